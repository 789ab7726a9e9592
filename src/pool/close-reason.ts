// Why pg-pool closes a connection. pg-pool's `remove` event never says why, so the reason is
// decided when the `release` event fires, by the same tests in the same order as pg-pool's
// `_release`, and read back when `remove` arrives.
import type { PgClient, PgPool } from '../pg/pg-types';

export type CloseReason =
  | 'idle_timeout'
  | 'max_uses'
  | 'max_lifetime'
  | 'released_with_error'
  | 'broken'
  | 'client_end'
  | 'pool_end'
  | 'idle_error';

export const CLOSE_REASONS: readonly CloseReason[] = [
  'idle_timeout',
  'max_uses',
  'max_lifetime',
  'released_with_error',
  'broken',
  'client_end',
  'pool_end',
  'idle_error',
];

/**
 * The reason pg-pool will close `client` on this release, or undefined when it will keep it. Asked
 * as _release begins, before pg-pool adds this use to the client's count.
 */
export function closeReasonOnRelease(pool: PgPool, client: PgClient, err: unknown): CloseReason | undefined {
  if (err) return 'released_with_error';
  if (pool.ending) return 'pool_end';
  if (client._queryable === false) return 'broken';
  if (client._ending) return 'client_end';
  const options = pool.options;
  if (options === undefined) return undefined;
  const maxUses = options.maxUses ?? Infinity;
  if ((client._poolUseCount ?? 0) + 1 >= maxUses) return 'max_uses';
  // pg-pool marks clients expired only with maxLifetimeSeconds set: no lookup per release otherwise.
  if (options.maxLifetimeSeconds && pool._expired?.has(client)) return 'max_lifetime';
  return undefined;
}

/** The reason for a removal nobody announced: the idle timer, or the pool ending. */
export function closeReasonOnUnannouncedRemove(pool: PgPool): CloseReason {
  return pool.ending ? 'pool_end' : 'idle_timeout';
}
