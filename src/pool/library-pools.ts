// The pools behind a Knex or Sequelize instance, so that setPoolName() can be given the instance
// the application holds rather than a pool it never sees.

type Named = [pool: object, name: string];

function isObject(v: unknown): v is object {
  return (typeof v === 'object' || typeof v === 'function') && v !== null;
}

/** The pools `target` stands for, each with its name; any other object is a pool itself. */
export function poolsNamed(target: object, name: string): Named[] {
  // Knex: a function whose client holds its tarn pool, or the pg.Pool it was given as connectionPool.
  const knexClient = (target as { client?: { pool?: unknown; config?: { connectionPool?: unknown } } }).client;
  if (typeof target === 'function' && isObject(knexClient)) {
    const given = knexClient.config?.connectionPool;
    if (isObject(given)) return [[given, name]];
    if (isObject(knexClient.pool)) return [[knexClient.pool, name]];
  }
  // Sequelize: its connection manager's sequelize-pool, or a read and a write pool with replication.
  const manager = (target as { connectionManager?: { pool?: unknown } }).connectionManager;
  const pool = isObject(manager) ? manager.pool : undefined;
  if (isObject(pool)) {
    const { read, write } = pool as { read?: unknown; write?: unknown };
    if (isObject(read) && isObject(write)) return [[read, `${name}:read`], [write, `${name}:write`]];
    return [[pool, name]];
  }
  return [[target, name]];
}
