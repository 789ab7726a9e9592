// Who a pool talks to and what it is called. The name is what dashboards group by, so it must be
// stable for the pool's life and unique among live pools.
import type { Attributes } from '@opentelemetry/api';
import type { PgClient, PgPoolOptions } from '../pg/pg-types';
import { poolsNamed } from './library-pools';

export interface ServerIdentity {
  address: string;
  port: number;
  namespace: string;
}

// Process-wide: setPoolName() from `pg-pool-otel` names pools for the preload too, which is a
// separate bundle (scripts/bundle-preload.js).
const NAMES_KEY = Symbol.for('pg-pool-otel.pool-names');
const POOL_NAMES: WeakMap<object, string> = ((globalThis as { [NAMES_KEY]?: WeakMap<object, string> })[NAMES_KEY] ??= new WeakMap());

/**
 * Gives a pool its own name for telemetry. Call it right after `new Pool()` (or `knex()`, `new
 * Sequelize()`: their pools are named; Sequelize's read and write pools get `:read` and `:write`),
 * before the pool's first checkout; a later call has no effect on an already reported pool.
 */
export function setPoolName(pool: object, name: string): void {
  if (typeof name !== 'string' || name.trim() === '' || !pool) return;
  for (const [p, n] of poolsNamed(pool, name.trim())) POOL_NAMES.set(p, n);
}

export function explicitPoolName(pool: object): string | undefined {
  return POOL_NAMES.get(pool);
}

function toPort(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value !== '' ? Number(value) : NaN;
  return Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
}

/** What a connected (or at least constructed) client says about its server: pg resolved env and URL. */
export function serverOfClient(client: PgClient): ServerIdentity {
  return {
    address: client.host || 'localhost',
    port: toPort(client.port) ?? 5432,
    namespace: client.database || client.user || '',
  };
}

/**
 * The pool's server from its options, resolving a connection string and the PG* variables the
 * way pg does, for the rare pool whose first client could not be seen.
 */
export function serverOfOptions(options: PgPoolOptions, env: NodeJS.ProcessEnv = process.env): ServerIdentity {
  let fromUrl: Partial<ServerIdentity> & { user?: string } = {};
  if (typeof options.connectionString === 'string') {
    try {
      const u = new URL(options.connectionString);
      fromUrl = {
        address: decodeURIComponent(u.hostname) || u.searchParams.get('host') || undefined,
        port: toPort(u.port),
        namespace: decodeURIComponent(u.pathname.replace(/^\//, '')) || undefined,
        user: decodeURIComponent(u.username) || undefined,
      };
    } catch {
      // not a URL (e.g. a bare socket path): fall through to the options and variables
    }
  }
  const user = (options.user as string | undefined) ?? fromUrl.user ?? env.PGUSER ?? env.USER ?? '';
  return {
    address: (options.host as string | undefined) || fromUrl.address || env.PGHOST || 'localhost',
    port: toPort(options.port) ?? fromUrl.port ?? toPort(env.PGPORT) ?? 5432,
    namespace: (options.database as string | undefined) || fromUrl.namespace || env.PGDATABASE || user,
  };
}

export function serverAttributes(server: ServerIdentity): Attributes {
  return { 'server.address': server.address, 'server.port': server.port, 'db.namespace': server.namespace };
}
