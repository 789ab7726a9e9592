// Releases inside a transaction: counted by status (T in_transaction, E failed_transaction),
// logged once per acquisition site, not counted after COMMIT/ROLLBACK; the ReadyForQuery
// fallback for pg without getTransactionStatus(); the opt-in 'destroy' action.
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument, eventually } from './support/telemetry';
import { usePostgres } from './support/server';
import { setPoolName } from '../src/index';
import { captureLog, siteOf } from './fixtures/leaks/capture';
import { releasesFromCallbacks } from './support/transactions';

const t = instrument({ leakThresholdMs: 60_000, configAdvice: false });
void t.instrumentation.settings;
const logs = captureLog();
const server = usePostgres();
after(() => t.shutdown());
afterEach(() => logs.clear());

const METRIC = 'pg_pool.checkout.released_in_transaction';

function pool(name: string, extra: Record<string, unknown> = {}) {
  const p = new t.pg.Pool({ connectionString: server.current.url, max: 2, ...extra });
  setPoolName(p, name);
  return p;
}

const count = (pool: string, status: string) =>
  t.value(METRIC, { 'db.client.connection.pool.name': pool, transaction_status: status });

async function scenarios(p: InstanceType<typeof t.pg.Pool>) {
  const a = await p.connect();
  await a.query('BEGIN');
  a.release(); // open transaction: T
  const b = await p.connect();
  await b.query('ROLLBACK'); // ends the transaction b inherited: what b leaves open next is its own
  await b.query('BEGIN');
  await assert.rejects(b.query('SELECT 1/0'));
  b.release(); // failed transaction: E
  const c = await p.connect();
  await c.query('ROLLBACK'); // ends whichever transaction c inherited
  await c.query('BEGIN');
  await c.query('COMMIT');
  c.release(); // committed: not counted
  const d = await p.connect();
  await d.query('ROLLBACK');
  await d.query('BEGIN');
  await d.query('ROLLBACK');
  d.release(); // rolled back: not counted
}

describe('release inside a transaction', () => {
  it('counts BEGIN-then-release as in_transaction, a failed statement as failed_transaction, COMMIT/ROLLBACK as nothing', async () => {
    const p = pool('tx');
    await scenarios(p);
    assert.equal(await count('tx', 'in_transaction'), 1);
    assert.equal(await count('tx', 'failed_transaction'), 1);
    assert.equal((await t.points(METRIC)).filter((x) => x.attributes['db.client.connection.pool.name'] === 'tx').length, 2);
    const warnings = logs.warnings();
    assert.equal(warnings.length, 2, warnings.join('\n---\n'));
    assert.match(warnings[0]!, /client released inside a transaction \(status T: in_transaction\): pool "tx"; the next checkout inherits/);
    assert.match(warnings[1]!, /status E: failed_transaction/);
    assert.ok(warnings[0]!.includes(__filename), 'names the acquisition site');
    await p.end();
  });

  it('logs once per acquisition site but counts every release; pool.query("BEGIN") counts too', async () => {
    const p = pool('repeat');
    for (let i = 0; i < 3; i++) {
      const c = await p.connect();
      await c.query('ROLLBACK');
      await c.query('BEGIN');
      c.release();
    }
    await p.query('ROLLBACK'); // ends the loop's last transaction
    await p.query('BEGIN');
    assert.equal(await count('repeat', 'in_transaction'), 4);
    assert.equal(logs.warnings().length, 2, 'one for the loop site, one for the pool.query site');
    await p.end();
  });

  it('blames the checkout that left a transaction open, once, and not the three borrowers that inherit it', async () => {
    const p = pool('victims', { max: 1 });
    const leaver = await p.connect(); // SITE:leftOpen
    await leaver.query('BEGIN');
    leaver.release();
    for (let i = 0; i < 3; i++) await p.query('SELECT 1'); // each inherits the open transaction
    const c = await p.connect();
    await c.query('SELECT 1');
    c.release(); // a fourth borrower, through connect(): inherits it too
    assert.equal(await count('victims', 'in_transaction'), 1, 'the leaving counted once');
    const warnings = logs.warnings();
    assert.equal(warnings.length, 1, warnings.join('\n---\n'));
    assert.ok(warnings[0]!.includes(siteOf(__filename, 'leftOpen')), warnings[0]);
    assert.ok(!warnings.some((w) => w.includes('pool.query (SELECT')), 'no victim blamed');
    if (process.env.PRINT_REPORTS) console.log(warnings[0]); // for docs/finding-leaks.md
    // Once a borrower ends it, a new transaction left open is a new leaving.
    const d = await p.connect();
    await d.query('ROLLBACK');
    await d.query('BEGIN');
    d.release();
    assert.equal(await count('victims', 'in_transaction'), 2);
    await p.query('ROLLBACK');
    await p.end();
  });

  it('a release before the failed statement\'s ReadyForQuery arrived is judged on that ReadyForQuery (E, not the stale T)', async () => {
    const p = pool('in-flight');
    const c = await p.connect();
    await c.query('BEGIN');
    const failing = c.query('SELECT 1/0');
    c.release(); // status is still T here; the server's answer says E
    await assert.rejects(failing);
    await eventually(async () => (await count('in-flight', 'failed_transaction')) === 1, 2000, 'failed_transaction counted');
    assert.equal(await count('in-flight', 'in_transaction'), undefined);
    await p.end();
  });

  it('release(err) inside a transaction is not counted: the pool discards that client', async () => {
    const p = pool('discard');
    const c = await p.connect();
    await c.query('BEGIN');
    c.release(new Error('give up'));
    assert.equal(await count('discard', 'in_transaction'), undefined);
    await p.end();
  });

  it('without getTransactionStatus() (pg < 8.21) reads the ReadyForQuery status from the protocol', async () => {
    class OldClient extends t.pg.Client {}
    Object.defineProperty(OldClient.prototype, 'getTransactionStatus', { value: undefined });
    const p = pool('old-pg', { Client: OldClient });
    await scenarios(p);
    assert.equal(await count('old-pg', 'in_transaction'), 1);
    assert.equal(await count('old-pg', 'failed_transaction'), 1);
    await p.end();
    // A subclass's prototype is not patched (pg.Client's has getTransactionStatus()): its clients
    // are followed by a listener on the connection, ahead of the client's own.
    const q = pool('old-pg-callbacks', { Client: OldClient, max: 1 });
    const readings = await releasesFromCallbacks(q, () => count('old-pg-callbacks', 'in_transaction'));
    assert.deepEqual(readings, { afterCommit: undefined, afterBegin: 1 });
    await q.end();
  });

  it("judges a release made from a query's callback by that query's ReadyForQuery: after COMMIT nothing, after BEGIN in_transaction", async () => {
    const p = pool('tx-callbacks', { max: 1 });
    const readings = await releasesFromCallbacks(p, () => count('tx-callbacks', 'in_transaction'));
    assert.deepEqual(readings, { afterCommit: undefined, afterBegin: 1 });
    await p.end();
  });

  it("with releaseInTransaction 'destroy' closes such a client instead of reusing it", async () => {
    t.instrumentation.setConfig({ leakThresholdMs: 60_000, configAdvice: false, releaseInTransaction: 'destroy' });
    void t.instrumentation.settings;
    captureLog(); // setConfig re-installed the stderr logger
    try {
      const p = pool('destroy', { max: 1 });
      const a = await p.connect();
      const pidA = (await a.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      await a.query('BEGIN');
      await a.query('CREATE TEMP TABLE left_open (x int)');
      a.release();
      const b = await p.connect();
      const status = b.getTransactionStatus?.();
      const pidB = (await b.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      assert.notEqual(pidB, pidA, 'a new connection, not the one with the open transaction');
      assert.equal(status, 'I');
      b.release();
      assert.equal(await count('destroy', 'in_transaction'), 1);
      await eventually(
        async () => (await t.value('pg_pool.connection.closed', { 'db.client.connection.pool.name': 'destroy', reason: 'released_with_error' })) === 1,
        2000,
        'closed with reason released_with_error'
      );
      // the server rolled the transaction back when the connection closed
      const other = await p.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1", [pidA]);
      assert.equal(other.rows[0].n, 0);
      await p.end();
    } finally {
      t.instrumentation.setConfig({ leakThresholdMs: 60_000, configAdvice: false });
    }
  });
});
