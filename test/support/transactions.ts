// Releases made from the callback of the statement that opens or ends a transaction: pg runs such a
// callback while it handles the server's ReadyForQuery, so the status judged at that release must
// already be the one that ReadyForQuery carried.

interface CallbackClient {
  query(text: string, callback: (err: Error | null) => void): void;
  query(text: string): Promise<unknown>;
  release(): void;
}
interface CallbackPool {
  connect(): Promise<CallbackClient>;
}

function releaseFromCallback(client: CallbackClient, text: string): Promise<void> {
  return new Promise((resolve, reject) =>
    client.query(text, (err) => {
      client.release();
      if (err) reject(err);
      else resolve();
    })
  );
}

/**
 * On a pool of max 1: a checkout that releases from COMMIT's callback, then one that releases from
 * BEGIN's callback (the pool's next checkout rolls that back). Returns the in_transaction count
 * read after each.
 */
export async function releasesFromCallbacks(pool: CallbackPool, inTransaction: () => Promise<number | undefined>): Promise<{ afterCommit: number | undefined; afterBegin: number | undefined }> {
  const a = await pool.connect();
  await a.query('BEGIN');
  await releaseFromCallback(a, 'COMMIT');
  const afterCommit = await inTransaction();
  const b = await pool.connect();
  await releaseFromCallback(b, 'BEGIN');
  const afterBegin = await inTransaction();
  const c = await pool.connect();
  await c.query('ROLLBACK');
  c.release();
  return { afterCommit, afterBegin };
}
