// One real PostgreSQL per test file, stopped by pid at the end.
import { after, before } from 'node:test';
import { startPostgres, type PostgresServer, type StartOptions } from '../../tools/embedded-postgres';
import type { Pg } from './telemetry';

/** Starts PostgreSQL before the file's tests and stops it after; read `.current` inside tests. */
export function usePostgres(options: StartOptions = {}): { current: PostgresServer } {
  const holder = {} as { current: PostgresServer };
  before(async () => {
    holder.current = await startPostgres({ maxConnections: 30, ...options });
  });
  after(async () => {
    await holder.current?.stop();
  });
  return holder;
}

/** Ends backend `pid` with pg_terminate_backend(), from a connection of its own. */
export async function terminateBackend(pg: Pg, url: string, pid: number): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('SELECT pg_terminate_backend($1)', [pid]);
  } finally {
    await c.end();
  }
}
