// Follows checkouts, releases, new connections and closes for every tracked pool, whatever library
// owns it: the hooks of each pool kind (src/hooks) report what happened, this records it on the
// pool's entries and series and tells the features (leaks, transactions, census, server).
import { performance } from 'node:perf_hooks';
import type { Context } from '@opentelemetry/api';
import { context, trace } from '../otel-api';
import type { PgPoolOtelSettings } from '../settings';
import type { PgClient } from '../pg/pg-types';
import { reportInternalError } from '../diag';
import { PoolEntry } from './pool-entry';
import { captureSite, type StackHolder } from './checkout-site';
import { CheckoutRequest, PoolQueryCall } from './checkout-request';
import type { CloseReason } from './close-reason';
import type { PoolRegistry } from './pool-registry';
import type { TrackedPool } from './tracked-pool';
import type { SiteBudget } from './site-budget';
import { withSlot } from '../slot';

type HotEvent = 'checkoutQueued' | 'checkedOut' | 'released';

/** The listeners that have `event`, in order: the per-checkout loops call only those. */
function having<E extends HotEvent>(listeners: PoolListener[], event: E): Required<Pick<PoolListener, E>>[] {
  return listeners.filter((l) => typeof l[event] === 'function') as Required<Pick<PoolListener, E>>[];
}

/** What features built on pool tracking are told. Each call is guarded: a fault stays inside. */
export interface PoolListener {
  poolRegistered?(pool: TrackedPool): void;
  poolEnded?(pool: TrackedPool): void;
  clientConnected?(entry: PoolEntry): void;
  /** A checkout that has to queue (nothing idle, no room): told only then, so waits cost nothing otherwise. */
  checkoutQueued?(request: CheckoutRequest): void;
  /** `request` is the request this checkout answered. */
  checkedOut?(entry: PoolEntry, request: CheckoutRequest): void;
  /** A checkout that failed: timed out (`timedOut`) or refused by the pool or the server. */
  checkoutFailed?(request: CheckoutRequest, timedOut: boolean): void;
  /** After the pool's release; `wasCheckedOut` is false for releases the application did not make. */
  released?(entry: PoolEntry, err: unknown, wasCheckedOut: boolean): void;
}

export class PoolTracker {
  /** The pool whose code is creating a connection right now: the client constructed now is its. */
  creatingFor: TrackedPool | undefined;
  /**
   * Where the application called a library that checks out later, from a promise callback whose
   * stack no longer reaches the application (a Knex transaction): set by that library's hook
   * around its own checkout code and used as the checkout's site.
   */
  calledFrom: StackHolder | undefined;

  // Per event, the listeners that have it: the loops below run on every checkout.
  private readonly onQueued: Required<Pick<PoolListener, 'checkoutQueued'>>[];
  private readonly onCheckedOut: Required<Pick<PoolListener, 'checkedOut'>>[];
  private readonly onReleased: Required<Pick<PoolListener, 'released'>>[];

  constructor(
    readonly registry: PoolRegistry,
    private readonly settings: PgPoolOtelSettings,
    private readonly sites: SiteBudget,
    readonly listeners: PoolListener[]
  ) {
    this.onQueued = having(listeners, 'checkoutQueued');
    this.onCheckedOut = having(listeners, 'checkedOut');
    this.onReleased = having(listeners, 'released');
  }

  /**
   * A checkout is requested. `above` is the patched function the application called, so the captured
   * stack starts at the application's frame. `query`: the first argument of the pool.query() call
   * this checkout is for (null when it had none), undefined for an explicit checkout. A pool.query()
   * call names its SQL instead of a stack: pg-pool releases that checkout itself, and the capture
   * costs a few µs. It is kept even with leak detection off, for the exhaustion report's holders.
   * `active`: the context the checkout was requested in, when the caller has it already.
   */
  requestCheckout(pool: TrackedPool, queued: boolean, above: Function, query: unknown, active: Context = context.active()): CheckoutRequest {
    const span = trace.getSpan(active);
    // `calledFrom`: a site a library hook captured earlier (Knex).
    const request =
      query !== undefined ? new PoolQueryCall(pool, span, query) : new CheckoutRequest(pool, this.calledFrom ?? this.captureSite(above), span);
    if (queued) this.queued(request);
    return request;
  }

  /** The request has to wait: counted, and told to the features (at once, or once its pool is registered). */
  queued(request: CheckoutRequest): void {
    request.pool.series.waits.value++;
    // Every checkout of a saturated pool queues: a plain loop, no closure per call.
    for (const l of this.onQueued) {
      try {
        l.checkoutQueued(request);
      } catch (e) {
        reportInternalError(`${l.constructor.name}.checkoutQueued`, e);
      }
    }
  }

  /** The caller's stack above `above`, when leak detection and stack capture are on and the budget allows. */
  captureSite(above: Function): StackHolder | undefined {
    const s = this.settings;
    return s.leakThresholdMs > 0 && s.captureStacks && this.sites.take() ? captureSite(above) : undefined;
  }

  /** The pool answered a checkout request. */
  checkoutDone(request: CheckoutRequest, err: unknown, client: PgClient | undefined, timedOut: boolean): void {
    const pool = request.pool;
    const series = pool.series;
    if (err || !client) {
      if (timedOut) series.timeouts.value++;
      this.tell('checkoutFailed', (l) => l.checkoutFailed?.(request, timedOut));
      return;
    }
    const now = performance.now();
    const waited = (now - request.requestedAt) / 1000;
    series.waitTime.record(waited);
    const entry = PoolEntry.for(client, pool);
    entry.checkOut(request, now);
    // The hot path: a plain loop, no closure per call.
    for (const l of this.onCheckedOut) {
      try {
        l.checkedOut(entry, request);
      } catch (e) {
        reportInternalError(`${l.constructor.name}.checkedOut`, e);
      }
    }
  }

  /** The pool took a connection back; `closeReason` is set when the pool is about to close it. */
  released(pool: TrackedPool, client: PgClient, err: unknown, closeReason: CloseReason | undefined): void {
    const entry = PoolEntry.for(client, pool);
    const wasCheckedOut = entry.checkIn(closeReason);
    if (wasCheckedOut) pool.series.useTime.record((performance.now() - entry.acquiredAt) / 1000);
    for (const l of this.onReleased) {
      try {
        l.released(entry, err, wasCheckedOut);
      } catch (e) {
        reportInternalError(`${l.constructor.name}.released`, e);
      }
    }
  }

  /** Runs a pool's own connection-creating code, so the client it constructs is known to be the pool's. */
  creating<T>(pool: TrackedPool, create: (...args: never[]) => T, self?: unknown, args?: ArrayLike<unknown>): T {
    return withSlot<PoolTracker, 'creatingFor', T>(this, 'creatingFor', pool, create, self, args);
  }

  /**
   * The pool's create returned `client`, which connected `connectSeconds` before (undefined when it
   * was known as the pool's from its connect on): it is the pool's entry from now on.
   */
  created(pool: TrackedPool, client: PgClient, connectSeconds: number | undefined): void {
    const known = PoolEntry.of(client);
    if (known?.pool === pool) {
      if (known.connectStartedAt !== undefined) this.connected(known);
      return;
    }
    const entry = new PoolEntry(client, pool);
    if (connectSeconds !== undefined) pool.series.createTime.record(connectSeconds);
    this.tell('clientConnected', (l) => l.clientConnected?.(entry));
  }

  /** The pool creates a connection for itself: `client` is its, and not a bare client. */
  connecting(pool: TrackedPool, client: PgClient): PoolEntry {
    pool.firstClient?.(client); // a pool registered by its first pg client (tarn, sequelize-pool)
    const entry = new PoolEntry(client, pool);
    entry.connecting(performance.now());
    return entry;
  }

  /** The connection is open and about to be handed out or put in the pool. */
  connected(entry: PoolEntry): void {
    const started = entry.connected();
    if (started !== undefined) {
      entry.pool.series.createTime.record((performance.now() - started) / 1000);
    }
    this.tell('clientConnected', (l) => l.clientConnected?.(entry));
  }

  /** The pool closed a connection; `reason` is used when none was decided at release. */
  closed(pool: TrackedPool, client: PgClient, reason: CloseReason): void {
    const entry = PoolEntry.of(client);
    pool.series.closed[entry ? entry.close(reason) : reason].value++;
  }

  registered(pool: TrackedPool): void {
    this.tell('poolRegistered', (l) => l.poolRegistered?.(pool));
  }

  ending(pool: TrackedPool): void {
    if (pool.ended) return;
    this.registry.unregister(pool);
    this.tell('poolEnded', (l) => l.poolEnded?.(pool));
  }

  private tell(what: keyof PoolListener, call: (l: PoolListener) => void): void {
    for (const l of this.listeners) {
      try {
        call(l);
      } catch (e) {
        reportInternalError(`${l.constructor.name}.${what}`, e);
      }
    }
  }
}
