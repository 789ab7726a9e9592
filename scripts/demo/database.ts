// The demo's PostgreSQL: an embedded server (or DATABASE_URL when set), a login role that is not
// a superuser (so the server's reserved slots apply to it as they would in production), and the
// example service's schema.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { startPostgres } from '../../tools/embedded-postgres';
import { onCleanup, recordPid } from './processes';

export interface Database {
  /** URL the example service connects with. */
  url: string;
  /** Where it came from, for the banner. */
  description: string;
  embedded: boolean;
  /** Connections a non-superuser can open: max_connections minus the reserved slots. */
  usableConnections: number;
  maxConnections: number;
}

const SCHEMA = join(__dirname, '../../examples/service/schema.sql');
const APP_ROLE = 'demo_app';

async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, application_name: 'pg-pool-otel-demo-setup' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function limits(url: string): Promise<{ maxConnections: number; usableConnections: number }> {
  return withClient(url, async (c) => {
    const { rows } = await c.query(
      `SELECT current_setting('max_connections')::int AS max,
              current_setting('superuser_reserved_connections')::int AS su,
              coalesce(current_setting('reserved_connections', true), '0')::int AS reserved,
              (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser`
    );
    const r = rows[0] as { max: number; su: number; reserved: number; superuser: boolean };
    return { maxConnections: r.max, usableConnections: r.superuser ? r.max : r.max - r.su - r.reserved };
  });
}

export async function prepareDatabase(maxConnections: number, log: (line: string) => void): Promise<Database> {
  const schema = readFileSync(SCHEMA, 'utf8');
  const external = process.env.DATABASE_URL;
  if (external) {
    await withClient(external, (c) => c.query(schema));
    return { url: external, description: 'DATABASE_URL', embedded: false, ...(await limits(external)) };
  }
  const server = await startPostgres({ maxConnections, notice: log });
  recordPid('postgres', server.pid);
  onCleanup(() => server.stop());
  log(`started PostgreSQL (embedded-postgres) on ${server.host}:${server.port} pid=${server.pid ?? '?'}`);
  await withClient(server.url, async (c) => {
    await c.query(`CREATE ROLE ${APP_ROLE} LOGIN PASSWORD '${APP_ROLE}'`);
    await c.query(`CREATE DATABASE shop OWNER ${APP_ROLE}`);
  });
  const url = `postgres://${APP_ROLE}:${APP_ROLE}@${server.host}:${server.port}/shop`;
  await withClient(url, (c) => c.query(schema));
  return { url, description: `embedded PostgreSQL ${server.host}:${server.port}`, embedded: true, ...(await limits(url)) };
}
