// Lends a pooled client to the server sampler for one short query, without changing how many
// connections the pool opens or which requests it queues. Why this mechanism:
// - pool.connect() is instrumented (it would count as a checkout, a wait, a use and could trip leak
//   detection), emits 'acquire' to the app's listeners and can open a connection or queue.
// - pg-pool's private _acquireClient would also emit 'acquire' and bump _poolUseCount (maxUses).
// - Querying an idle client in place would leave the app's first query queued behind ours inside
//   pg's Client, where a second query would print pg's "already executing a query" deprecation.
// So the IdleItem is taken out of `_idle` (the pool can no longer hand it out) and put back
// unchanged afterwards: its idle timer keeps running, its idle error listener stays attached, so
// pg-pool treats an error or an idle timeout during our query exactly as it would when idle.
//
// While the client is lent, a checkout that would have got it (no other idle client is free for
// it) waits for it instead of letting pg-pool open a connection or queue: waitForLentClient()
// replays that connect() the moment the client is back. The app waits at most one monitoring
// query and never gets a connection it would not have had.
import type { Callback, PgClient, PgPool } from '../pg-types';
import { reportInternalError } from '../diag';

interface IdleItem {
  client: PgClient;
  timeoutId?: ReturnType<typeof setTimeout>;
}

interface PendingItem {
  timedOut?: boolean;
}

interface PoolInternals {
  _idle?: IdleItem[];
  _clients?: PgClient[];
  _pendingQueue?: PendingItem[];
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
  /** Checkouts are waiting for this client (or queued behind it): give it back soon. */
  wanted(): boolean;
  /** Puts the client back on the idle list, or lets the pool close it when `broken` or no longer fit. */
  giveBack(broken: boolean): void;
}

/** Per pool: clients lent out, and the checkouts waiting for them. */
interface Lending {
  lent: number;
  /** Of those, taken off the idle list (not claimed on release): idle as far as the app is concerned. */
  lentIdle: number;
  /** A released client is about to be lent (see lendOnRelease): checkouts wait for it. */
  claiming: boolean;
  /** connect() calls to replay, oldest first. */
  waiting: Array<() => void>;
}

const lending = new WeakMap<object, Lending>();

function lendingOf(pool: PgPool): Lending {
  let l = lending.get(pool);
  if (!l) lending.set(pool, (l = { lent: 0, lentIdle: 0, claiming: false, waiting: [] }));
  return l;
}

/** Idle clients lent out of this pool; pool gauges add them back to idle, where they are for the app. */
export function lentIdleCount(pool: object): number {
  return lending.get(pool)?.lentIdle ?? 0;
}

/** Room to borrow: an idle client and nobody queued (a queued request gets that idle client next). */
export function canBorrow(pool: PgPool): boolean {
  return (
    !pool.ending &&
    !pool.ended &&
    !lending.get(pool)?.claiming &&
    (pool.waitingCount | 0) === 0 &&
    (pool.idleCount | 0) > 0
  );
}

function internalsOf(pool: PgPool): (PgPool & PoolInternals) | undefined {
  const p = pool as PgPool & PoolInternals;
  const supported =
    Array.isArray(p._idle) &&
    Array.isArray(p._pendingQueue) &&
    typeof p._pulseQueue === 'function' &&
    typeof p._remove === 'function';
  return supported ? p : undefined;
}

/** Takes an idle client off the pool's idle list for a monitoring query. */
export function borrowIdleClient(pool: PgPool): Lease | SkipReason {
  const internals = internalsOf(pool);
  if (!internals) return 'unsupported';
  if (pool.ending || pool.ended) return 'ending';
  if (!canBorrow(pool)) return 'busy';
  const idle = internals._idle!;
  // The least recently released client: pg-pool hands out the most recent one first (pop), so
  // with two or more idle clients the next checkout does not even notice.
  for (let i = 0; i < idle.length; i++) {
    const item = idle[i];
    if (!item || !isQuiet(item.client)) continue;
    idle.splice(i, 1);
    return lease(internals, item, true);
  }
  return 'busy';
}

/**
 * For a pool where every client is in use and requests are queued: called from pg-pool's
 * synchronous 'release' event, before pg-pool puts `client` back and hands it to the next queued
 * request. The queue is set aside for that moment, so the client lands on the idle list; on the
 * next tick it is lent out and the queue is put back in its order. The queued requests get the
 * client after our query instead of before it: the bounded cost of a fresh sample while saturated.
 * Returns false (and changes nothing) when the client is not fit to lend; otherwise `use` gets the
 * lease on the next tick, or undefined if the client was gone by then (pool ending, say).
 */
export function lendOnRelease(
  pool: PgPool,
  client: PgClient,
  err: unknown,
  use: (lease: Lease | undefined) => void
): boolean {
  const internals = internalsOf(pool);
  if (!internals || err || !keptOnRelease(internals, client) || !isQuiet(client)) return false;
  const l = lendingOf(pool);
  if (l.claiming) return false;
  const queue = internals._pendingQueue!;
  const held = queue.splice(0);
  l.claiming = true;
  process.nextTick(() => {
    l.claiming = false;
    let lent: Lease | undefined;
    // Waiters that timed out meanwhile already got pg-pool's timeout error.
    const back = held.filter((item) => !item.timedOut);
    try {
      const idle = internals._idle!;
      const i = idle.findIndex((item) => item.client === client);
      // Bound for the queued request, not idle: it counts as used, as it would without us.
      if (i >= 0 && !pool.ending && isQuiet(client)) lent = lease(internals, idle.splice(i, 1)[0]!, false);
      use(lent);
    } catch (e) {
      reportInternalError('server sample on release', e);
    }
    queue.unshift(...back);
    // Clients released while the queue was set aside serve it now, one request per pulse. Pulses
    // run the app's callbacks: each on its own tick, as pg-pool runs them, so that an exception
    // of the app's is the app's, not ours.
    for (let n = back.length; n > 0; n--) process.nextTick(pulseOf(internals));
    replayWaiting(internals, l);
  });
  return true;
}

/**
 * Wraps pg-pool's connect(callback). While the sampler holds a client this checkout would have
 * found idle, the call is put off until the client is back; then pg-pool serves it as it would
 * have without us. Bounded by the pool's connectionTimeoutMillis, after which the call goes
 * through as it is (pg-pool opens or queues, as for a hung connection).
 */
export function waitForLentClient(connect: Callback): Callback {
  // Named parameter, not rest arguments: this runs on every checkout, and almost always goes
  // straight through.
  return function connectUnlessLent(this: PgPool, cb?: unknown) {
    let l: Lending | undefined;
    try {
      l = lending.get(this);
      if (!l || typeof cb !== 'function' || this.ending || !mustWait(this, l)) l = undefined;
    } catch {
      l = undefined;
    }
    // eslint-disable-next-line prefer-rest-params
    if (!l) return connect.apply(this, arguments as unknown as unknown[]);
    // eslint-disable-next-line prefer-rest-params
    const args = Array.from(arguments as unknown as unknown[]);
    const waiting = l.waiting;
    let done = false;
    const go = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        connect.apply(this, args);
      } catch (e) {
        // Called straight away, pg-pool would have thrown to the caller; later, its callback is told.
        (cb as Callback)(e);
      }
    };
    const limit = Number(this.options?.connectionTimeoutMillis);
    const timer = limit > 0 ? setTimeout(() => {
      const i = waiting.indexOf(go);
      if (i >= 0) waiting.splice(i, 1);
      go();
    }, limit) : undefined;
    timer?.unref();
    waiting.push(go);
    return undefined;
  };
}

/** Whether a checkout now would take (or queue for) a client that is only busy because it is lent. */
function mustWait(pool: PgPool, l: Lending): boolean {
  if (l.claiming) return true;
  if (l.lent === 0) return false;
  const internals = pool as PgPool & PoolInternals;
  // pg-pool serves queued requests from idle clients in order: this one finds a free idle client
  // only if there are more idle clients than requests ahead of it.
  return (internals._idle?.length ?? 0) <= (internals._pendingQueue?.length ?? 0);
}

/** Replays put-off checkouts, oldest first, as long as they no longer have to wait. */
function replayWaiting(pool: PgPool & PoolInternals, l: Lending): void {
  while (l.waiting.length > 0 && !mustWait(pool, l)) {
    const go = l.waiting.shift()!;
    try {
      go();
    } catch (e) {
      // Thrown by the app's own callback: rethrown where pg-pool's would be, outside our code.
      process.nextTick(() => {
        throw e;
      });
    }
  }
}

const pulseOf = (pool: PgPool & PoolInternals) => () => pool._pulseQueue?.call(pool);

/** pg-pool's own test in _release: the client goes back to the idle list rather than being closed. */
function keptOnRelease(pool: PgPool & PoolInternals, client: PgClient): boolean {
  const maxUses = Number(pool.options?.maxUses) || Infinity;
  return (
    !pool.ending &&
    client._queryable !== false &&
    !client._ending &&
    (client._poolUseCount ?? 0) < maxUses &&
    !(pool._expired?.has(client) ?? false)
  );
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

function lease(internals: PgPool & PoolInternals, item: IdleItem, idle: boolean): Lease {
  const pool = internals;
  const l = lendingOf(pool);
  l.lent++;
  if (idle) l.lentIdle++;
  let returned = false;
  return {
    client: item.client,
    wanted: () => l.waiting.length > 0 || (internals._pendingQueue?.length ?? 0) > 0,
    giveBack(broken) {
      if (returned) return;
      returned = true;
      l.lent = Math.max(0, l.lent - 1);
      if (idle) l.lentIdle = Math.max(0, l.lentIdle - 1);
      const client = item.client;
      // On its own tick, as pg-pool pulses after a connect(): it runs the app's callbacks.
      const pulse = () => process.nextTick(pulseOf(internals));
      // Off the idle list pg-pool cannot clear the idle timer itself; left running it would close
      // the client a second time (a second 'remove' event).
      const dropTimer = () => clearTimeout(item.timeoutId);
      // Removed meanwhile (idle timeout or idle error): pg-pool already closed it.
      if (!internals._clients?.includes(client)) {
        dropTimer();
        replayWaiting(internals, l);
        return pulse();
      }
      const expired = internals._expired?.has(client) ?? false;
      if (broken || expired || !isQuiet(client)) {
        // The same path as pg-pool's own release of an unusable or expired client.
        dropTimer();
        internals._expired?.delete(client);
        const remove = internals._remove;
        remove?.call(pool, client, pulseOf(internals));
        replayWaiting(internals, l);
        // pg-pool before 3.10.1 took no callback and expected the caller to pulse right away.
        if (remove && remove.length < 2) pulse();
        return;
      }
      internals._idle?.push(item);
      // Checkouts put off while we held the client queue now, behind the requests already queued.
      replayWaiting(internals, l);
      // Serves the first of them, or finishes a pending pool.end().
      pulse();
    },
  };
}
