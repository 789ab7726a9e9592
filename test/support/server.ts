// One real PostgreSQL per test file, stopped by pid at the end.
import { after, before } from 'node:test';
import { startPostgres, type PostgresServer, type StartOptions } from '../../tools/embedded-postgres';

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
