// pg-pool's size limits as numbers the metrics can report, whatever the app passed. pg-pool
// normalizes with `||` (max 0 becomes 10) and compares with `>=`, so odd values still mean
// something: a negative max is a pool that never opens a connection, and a max that is not a
// number, or Infinity, is a pool that is never full.
import type { PgPool } from '../pg/pg-types';

/** The most connections the pool will open; undefined when pg-pool sets no limit. */
export function poolMax(pool: PgPool): number | undefined {
  const max = Number(pool.options?.max ?? 10);
  if (Number.isNaN(max) || max === Infinity) return undefined;
  return Math.max(0, Math.ceil(max));
}

/** The idle connections pg-pool keeps from idle eviction, never above max. */
export function poolMin(pool: PgPool, max: number | undefined): number {
  const min = Number(pool.options?.min ?? 0);
  if (!(min > 0)) return 0;
  const limit = Math.min(Math.ceil(min), max ?? Infinity);
  return Number.isFinite(limit) ? limit : 0;
}

/** Whether a checkout requested now has to queue: nothing idle and no room for a new connection. */
export function mustWait(pool: PgPool): boolean {
  const max = poolMax(pool);
  return pool.idleCount === 0 && max !== undefined && pool.totalCount >= max;
}
