// Borrows an idle client straight from pg-pool's idle list for a monitoring query, without
// pool.connect(). Why this mechanism:
// - pool.connect() is instrumented (it would count as a checkout, a wait, a use and could trip leak
//   detection), emits 'acquire' to the app's listeners and can open a connection or queue.
// - pg-pool's private _acquireClient would also emit 'acquire' and bump _poolUseCount (maxUses).
// - Querying an idle client in place is unsafe: the pool could hand it out mid-query and the app's
//   first query would wait behind ours.
// So the IdleItem is taken out of `_idle` (the pool can no longer hand it out) and put back
// unchanged afterwards: its idle timer keeps running, its idle error listener stays attached, so
// pg-pool treats an error or an idle timeout during our query exactly as it would when idle.
// The only thing the app can notice: a connect() in the few milliseconds we hold the client finds
// one idle client fewer (it gets another idle one, opens one if the pool has room, or queues for
// at most the duration of our query if the pool is full).
import type { PgClient, PgPool } from '../pg-types';

interface IdleItem {
  client: PgClient;
  timeoutId?: ReturnType<typeof setTimeout>;
}

interface PoolInternals {
  _idle?: IdleItem[];
  _clients?: PgClient[];
  _expired?: WeakSet<PgClient>;
  _remove?: (client: PgClient, callback?: () => void) => void;
  _pulseQueue?: () => void;
}

interface ClientInternals {
  _activeQuery?: unknown;
  _queryQueue?: unknown[];
}

export type SkipReason = 'busy' | 'ending' | 'unsupported';

export interface Lease {
  client: PgClient;
  /** Puts the client back on the idle list, or lets the pool close it when `broken` or no longer fit. */
  giveBack(broken: boolean): void;
}

/** Clients lent out per pool; pool gauges add them back to idle, where they are for the app. */
const lent = new WeakMap<object, number>();

export function lentIdleCount(pool: object): number {
  return lent.get(pool) ?? 0;
}

/** Room to borrow: an idle client and nobody queued (a queued request gets that idle client next). */
export function canBorrow(pool: PgPool): boolean {
  return !pool.ending && !pool.ended && (pool.waitingCount | 0) === 0 && (pool.idleCount | 0) > 0;
}

export function borrowIdleClient(pool: PgPool): Lease | SkipReason {
  const internals = pool as PgPool & PoolInternals;
  const idle = internals._idle;
  if (!Array.isArray(idle) || typeof internals._pulseQueue !== 'function' || typeof internals._remove !== 'function') {
    return 'unsupported';
  }
  if (pool.ending || pool.ended) return 'ending';
  if (!canBorrow(pool)) return 'busy';
  // From the end: the most recently released client is the furthest from its idle timeout.
  for (let i = idle.length - 1; i >= 0; i--) {
    const item = idle[i];
    if (!item || !isQuiet(item.client)) continue;
    idle.splice(i, 1);
    lent.set(pool, lentIdleCount(pool) + 1);
    return lease(internals, pool, item);
  }
  return 'busy';
}

/** Connected, outside a transaction, and with nothing queued on it (an app may release early). */
function isQuiet(client: PgClient): boolean {
  if (client._queryable === false || client._ending) return false;
  const status = typeof client.getTransactionStatus === 'function' ? client.getTransactionStatus() : null;
  if (status === 'T' || status === 'E') return false;
  // Only pg's own fields: the public `activeQuery` getter prints a deprecation warning.
  const c = client as PgClient & ClientInternals;
  if (c._activeQuery != null) return false;
  return !(Array.isArray(c._queryQueue) && c._queryQueue.length > 0);
}

function lease(internals: PoolInternals, pool: PgPool, item: IdleItem): Lease {
  let returned = false;
  return {
    client: item.client,
    giveBack(broken) {
      if (returned) return;
      returned = true;
      lent.set(pool, Math.max(0, lentIdleCount(pool) - 1));
      const client = item.client;
      const pulse = () => internals._pulseQueue?.call(pool);
      // Off the idle list pg-pool cannot clear the idle timer itself; left running it would close
      // the client a second time (a second 'remove' event).
      const dropTimer = () => clearTimeout(item.timeoutId);
      // Removed meanwhile (idle timeout or idle error): pg-pool already closed it.
      if (!internals._clients?.includes(client)) {
        dropTimer();
        return pulse();
      }
      const expired = internals._expired?.has(client) ?? false;
      if (broken || expired || !isQuiet(client)) {
        // The same path as pg-pool's own release of an unusable or expired client.
        dropTimer();
        internals._expired?.delete(client);
        const remove = internals._remove;
        remove?.call(pool, client, pulse);
        // pg-pool before 3.10.1 took no callback and expected the caller to pulse right away.
        if (remove && remove.length < 2) pulse();
        return;
      }
      internals._idle?.push(item);
      // Serves a request that queued while we held the client, or finishes a pending pool.end().
      pulse();
    },
  };
}
