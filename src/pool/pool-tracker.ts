// Follows each pool through pg-pool's own events: checkouts (from the connect wrapper), releases,
// new connections and removals. Gauges are not fed from here: they are read from the pool at
// collection time (see pool-gauges.ts), so they cannot drift.
import { errorMonitor } from 'node:events';
import { performance } from 'node:perf_hooks';
import { trace, context, type Attributes, type SpanContext } from '@opentelemetry/api';
import type { PgClient, PgPool } from '../pg-types';
import type { Instruments } from '../telemetry/instruments';
import type { PgPoolOtelSettings } from '../config';
import { reportInternalError } from '../diag';
import { Checkout, QuerySite, captureSite, type StackHolder } from './checkout';
import { CLOSE_REASONS, closeReasonOnRelease, closeReasonOnUnannouncedRemove } from './close-reason';
import { PoolRegistry } from './pool-registry';
import { mustWait } from './pool-limits';
import type { PoolState } from './pool-state';
import { serverOfClient, serverOfOptions, type ServerIdentity } from './pool-identity';

/** Extension points for features built on pool tracking (leak detection, server sampling). */
export interface PoolLifecycleListener {
  poolRegistered?(state: PoolState, pool: PgPool): void;
  poolEnded?(state: PoolState): void;
  clientConnected?(state: PoolState, client: PgClient): void;
  checkedOut?(checkout: Checkout): void;
  /** After pg-pool's `release` event; `checkout` is undefined for pg-pool's own synthetic releases. */
  released?(state: PoolState, client: PgClient, checkout: Checkout | undefined, err: unknown): void;
}

const TIMEOUT_MESSAGES = ['timeout exceeded when trying to connect', 'Connection terminated due to connection timeout'];

/** A pool.connect() call in flight. */
export interface PendingCheckout {
  complete(err: unknown, client: PgClient | undefined): void;
}

export class PoolTracker {
  readonly registry = new PoolRegistry();
  readonly listeners: PoolLifecycleListener[] = [];
  /** Wait of the checkout that pool.query() made, read by the query span of that same call. */
  readonly waitForNextQuery = new WeakMap<PgClient, number>();
  private readonly connectStartedAt = new WeakMap<PgClient, number>();
  private readonly poolOfClient = new WeakMap<PgClient, PoolState>();
  /** The pool whose newClient() is running: the Client constructed and connected now is its. */
  private creatingFor: PoolState | undefined;

  constructor(
    private readonly instruments: () => Instruments | undefined,
    private readonly settings: () => PgPoolOtelSettings
  ) {}

  stateOf(pool: PgPool): PoolState {
    const [state, isNew] = this.registry.getOrRegister(pool);
    if (isNew) this.attach(state, pool);
    return state;
  }

  /** The pool a client belongs to, if pg-pool created it. */
  poolOf(client: PgClient): PoolState | undefined {
    return this.poolOfClient.get(client);
  }

  /** Called by the Pool.prototype.connect wrapper before pg-pool runs. */
  beginCheckout(pool: PgPool, above: Function, poolQuery: { text: unknown } | undefined): PendingCheckout | undefined {
    if (pool.ending) return undefined;
    const state = this.stateOf(pool);
    const requestedAt = performance.now();
    const settings = this.settings();
    const viaQuery = poolQuery !== undefined;
    // pool.query() always releases its own checkout, so it cannot leak one by omission: naming its
    // SQL is enough, and the stack capture (a few µs) is kept for pool.connect(), where leaks happen.
    const site: StackHolder | undefined =
      settings.leakThresholdMs <= 0 ? undefined : poolQuery ? new QuerySite(poolQuery.text) : settings.captureStacks ? captureSite(above) : undefined;
    const spanContext = trace.getSpan(context.active())?.spanContext();
    if (mustWait(pool)) state.waits++;
    return {
      complete: (err, client) => {
        try {
          this.completeCheckout(state, pool, requestedAt, site, spanContext, viaQuery, err, client);
        } catch (e) {
          reportInternalError('checkout bookkeeping', e);
        }
      },
    };
  }

  private completeCheckout(
    state: PoolState,
    pool: PgPool,
    requestedAt: number,
    site: StackHolder | undefined,
    spanContext: SpanContext | undefined,
    viaQuery: boolean,
    err: unknown,
    client: PgClient | undefined
  ): void {
    const instruments = this.instruments();
    const attributes = this.attributesOf(state, pool);
    if (err || !client) {
      const message = (err as { message?: unknown } | undefined)?.message;
      if (typeof message === 'string' && TIMEOUT_MESSAGES.includes(message)) instruments?.timeouts.add(1, attributes);
      return;
    }
    const now = performance.now();
    const waited = (now - requestedAt) / 1000;
    instruments?.waitTime.record(waited, attributes);
    if (viaQuery) this.waitForNextQuery.set(client, waited);
    const checkout = new Checkout(client, state, requestedAt, now, site, spanContext);
    state.checkouts.set(client, checkout);
    for (const l of this.listeners) l.checkedOut?.(checkout);
  }

  /** Runs pg-pool's newClient() so that the Client it creates is known to be this pool's. */
  creatingClientFor<T>(pool: PgPool, run: () => T): T {
    const state = this.registry.get(pool);
    const previous = this.creatingFor;
    this.creatingFor = state;
    try {
      return run();
    } finally {
      this.creatingFor = previous;
    }
  }

  /** Called by the Client.prototype.connect wrapper: returns the pool creating this client, if any. */
  clientConnecting(client: PgClient): PoolState | undefined {
    const state = this.creatingFor;
    if (!state) return undefined;
    this.poolOfClient.set(client, state);
    this.connectStartedAt.set(client, performance.now());
    if (!state.resolved) {
      const pool = state.pool;
      if (pool) this.identify(state, pool, serverOfClient(client));
    }
    return state;
  }

  poolEnding(pool: PgPool): void {
    const state = this.registry.get(pool);
    if (!state || state.ended) return;
    this.registry.unregister(state);
    for (const l of this.listeners) l.poolEnded?.(state);
  }

  /** The pool's attributes, naming it from its options if no client has been seen yet. */
  attributesOf(state: PoolState, pool: PgPool): Attributes {
    if (!state.resolved) this.identify(state, pool, serverOfOptions(pool.options ?? {}));
    return state.attributes;
  }

  private identify(state: PoolState, pool: PgPool, server: ServerIdentity): void {
    this.registry.identify(state, pool, server);
    // Counters start at 0 so that increase() and rate() see the first event: a series that is
    // born at 1 has no earlier sample to compare with.
    const instruments = this.instruments();
    if (!instruments) return;
    instruments.timeouts.add(0, state.attributes);
    for (const reason of CLOSE_REASONS) instruments.closed.add(0, { ...state.attributes, reason });
  }

  private attach(state: PoolState, pool: PgPool): void {
    const guard =
      <A extends unknown[]>(where: string, fn: (...args: A) => void) =>
      (...args: A) => {
        try {
          fn(...args);
        } catch (e) {
          reportInternalError(where, e);
        }
      };
    pool.on(
      'connect',
      guard('pool connect event', (client: PgClient) => {
        const started = this.connectStartedAt.get(client);
        if (started !== undefined) {
          this.connectStartedAt.delete(client);
          this.instruments()?.createTime.record((performance.now() - started) / 1000, this.attributesOf(state, pool));
        }
        for (const l of this.listeners) l.clientConnected?.(state, client);
      })
    );
    pool.on(
      'release',
      guard('pool release event', (err: unknown, client: PgClient) => {
        if (!client) return;
        const checkout = state.checkouts.get(client);
        if (checkout) {
          state.checkouts.delete(client);
          this.instruments()?.useTime.record((performance.now() - checkout.acquiredAt) / 1000, this.attributesOf(state, pool));
        }
        const reason = closeReasonOnRelease(pool, client, err);
        if (reason) state.pendingClose.set(client, reason);
        for (const l of this.listeners) l.released?.(state, client, checkout, err);
      })
    );
    pool.on(
      'remove',
      guard('pool remove event', (client: PgClient) => {
        const reason = state.pendingClose.get(client) ?? closeReasonOnUnannouncedRemove(pool);
        state.pendingClose.delete(client);
        state.checkouts.delete(client);
        this.instruments()?.closed.add(1, { ...this.attributesOf(state, pool), reason });
      })
    );
    // errorMonitor sees 'error' without counting as a listener: an app that has no handler still
    // crashes exactly as it would without this package.
    pool.on(
      errorMonitor,
      guard('pool error monitor', (_err: unknown, client?: PgClient) => {
        if (client) state.pendingClose.set(client, 'idle_error');
      })
    );
    for (const l of this.listeners) l.poolRegistered?.(state, pool);
  }
}
