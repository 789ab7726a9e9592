// What tarn and sequelize-pool hooks share: generic resource pools that hold pg clients only
// under Knex's or Sequelize's PostgreSQL dialects (they also pool MySQL, SQLite and MSSQL
// connections). A pool is decided by its first connection: a pg client its create code connects
// or returns (or a pg connect failure) registers it as a TrackedPool, named then from that client;
// anything else leaves it alone for good. Checkouts requested before that refer to a TrackedPool
// not registered yet (no name, no series: nothing reads them before), which becomes the registered one.
import { reportInternalError } from '../diag';
import type { ClientConnections } from '../client/client-connections';
import { PATCHED, type PgClient } from '../pg/pg-types';
import { PoolEntry } from '../pool/pool-entry';
import { captureSite, type StackHolder } from '../pool/checkout-site';
import type { CheckoutRequest } from '../pool/checkout-request';
import type { PoolTracker } from '../pool/pool-tracker';
import { serverOfClient, type ServerIdentity } from '../pool/pool-identity';
import { TrackedPool, type PoolCounts, type PoolKind } from '../pool/tracked-pool';
import type { CloseReason } from '../pool/close-reason';


/** A client of a pg copy this process instrumented (the JavaScript or the native one). */
export function isPgClient(resource: unknown): resource is PgClient {
  if (resource === null || typeof resource !== 'object') return false;
  const r = resource as Record<string | symbol, unknown>;
  return r[PATCHED] === true && typeof r.query === 'function' && typeof r.connectionParameters === 'object';
}

/** How one library's pool is read; each hook builds its PoolKind from this. */
export interface ResourcePoolShape<P> {
  /** Connections idle, connections lent out, requests queued, creates under way, limits. */
  free(pool: P): number;
  used(pool: P): number;
  waiting(pool: P): number;
  creating(pool: P): number;
  max(pool: P): number | undefined;
  min(pool: P): number;
  /** A name the pool was given by its user, if the library lets them. */
  ownName?(pool: P, first: PgClient | undefined): string | undefined;
  /** The pool's resources, idle and in use. */
  resources(pool: P): Iterable<unknown>;
}

export function guard<A extends unknown[], R>(where: string, fn: (...args: A) => R): (...args: A) => R | undefined {
  return (...args: A) => {
    try {
      return fn(...args);
    } catch (e) {
      reportInternalError(where, e);
      return undefined;
    }
  };
}

/**
 * The checkout promise the caller gets: it settles as `acquired` does, after the outcome was
 * recorded, and rejects as the original did, so an acquire nobody handles is still an unhandled
 * rejection.
 */
export function answeredAcquire<P extends object>(
  resourceHooks: ResourcePoolHooks<P>,
  pool: P,
  request: CheckoutRequest,
  acquired: Promise<unknown>,
  isTimeout: (err: unknown) => boolean
): Promise<unknown> {
  const answered = guard('checkout bookkeeping', (err: unknown, resource: unknown) =>
    resourceHooks.answered(pool, request, err, resource, err ? isTimeout(err) : false)
  );
  return acquired.then(
    (resource) => {
      answered(undefined, resource);
      return resource;
    },
    (err: unknown) => {
      answered(err, undefined);
      throw err;
    }
  );
}

export class ResourcePoolHooks<P extends object> {
  readonly kind: PoolKind<P>;
  /** Pools not decided yet, and their checkouts that queued meanwhile (told once the pool is registered). */
  private readonly early = new WeakMap<P, { t: TrackedPool<P>; queued: Set<CheckoutRequest> }>();
  /** Pools of other resources (MySQL, SQLite, ...): never tracked. */
  private readonly others = new WeakSet<P>();
  /** The first connection of each registered pool: names it (application_name) and gives its server. */
  private readonly first = new WeakMap<P, PgClient>();
  private readonly all = new WeakMap<P, TrackedPool<P>>();

  constructor(
    readonly tracker: PoolTracker,
    private readonly clients: ClientConnections,
    private readonly shape: ResourcePoolShape<P>,
    private readonly attach: (t: TrackedPool<P>, pool: P) => void,
    extra: Partial<PoolKind<P>> = {}
  ) {
    const resourceHooks = this;
    this.kind = {
      *clients(pool) {
        for (const r of shape.resources(pool)) if (isPgClient(r)) yield r;
      },
      counts(pool): PoolCounts {
        const idle = Math.max(0, shape.free(pool) | 0);
        // A connection being created is neither idle nor used; a request a create under way will
        // serve is not queued (as pg-pool counts it).
        const pending = Math.max(0, (shape.waiting(pool) | 0) - (shape.creating(pool) | 0));
        return { total: idle + Math.max(0, shape.used(pool) | 0), idle, pending, max: shape.max(pool), min: shape.min(pool) };
      },
      // Before the pool is registered it has no series to count a wait in: counted at registration.
      mustWait: (pool) => resourceHooks.registered(pool) !== undefined && resourceHooks.mustWait(pool),
      serverOfOptions: (pool) => {
        const c = resourceHooks.first.get(pool);
        return c ? serverOfClient(c) : ({ address: 'localhost', port: 5432, namespace: '' } satisfies ServerIdentity);
      },
      configuredName: (pool) => {
        const c = resourceHooks.first.get(pool);
        return shape.ownName?.(pool, c) ?? applicationName(c);
      },
      createTimeoutMs: () => undefined,
      ...extra,
    };
  }

  /** The registered TrackedPool of `pool`, if it is one and has not ended. */
  registered(pool: P): TrackedPool<P> | undefined {
    return this.tracker.registry.get(pool);
  }

  /** The TrackedPool of `pool`, ended or not: releases and closes go on after the pool is told to end. */
  tracked(pool: P): TrackedPool<P> | undefined {
    return this.all.get(pool);
  }

  /** A checkout is requested: its CheckoutRequest, or undefined for a pool of other resources. */
  request(pool: P, above: Function): CheckoutRequest | undefined {
    const t = this.registered(pool);
    if (t) return this.tracker.requestCheckout(t, t.kind.mustWait(pool), above, undefined);
    const e = this.undecided(pool, above);
    if (!e) return undefined;
    // A cold pool: it has no series yet, but its first requests may queue and time out before the
    // first connection says what it pools. They are told as queued once it is registered.
    const request = this.tracker.requestCheckout(e.t, false, above, undefined);
    if (this.mustWait(pool)) e.queued.add(request);
    return request;
  }

  /** The pool answered a checkout; `request` came from request(). */
  answered(pool: P, request: CheckoutRequest, err: unknown, resource: unknown, timedOut: boolean): void {
    this.early.get(pool)?.queued.delete(request);
    if (err && !timedOut) this.createFailed(pool, err);
    // Still undecided (nothing created yet), or not a pg pool after all: nothing to record.
    if (this.tracked(pool) !== request.pool) return;
    if (err) this.tracker.checkoutDone(request, err, undefined, timedOut);
    else if (isPgClient(resource)) this.tracker.checkoutDone(request, undefined, resource, false);
  }

  /** The pool starts creating a connection; runs its create code. */
  creating<T>(pool: P, run: () => T): T {
    if (this.others.has(pool)) return run();
    const t = this.registered(pool) ?? this.undecided(pool, this.creating)?.t;
    if (!t) return run();
    this.clients.creatingAsync(pool, () => this.shape.creating(pool));
    return this.tracker.creating(t, run);
  }

  /** The pool's create returned `resource`. */
  created(pool: P, resource: unknown): void {
    if (this.others.has(pool)) return;
    if (!isPgClient(resource)) {
      if (!this.registered(pool)) this.leaveAlone(pool);
      return;
    }
    const known = PoolEntry.of(resource);
    const t = this.registered(pool);
    if (t && known?.pool === t && known.connectStartedAt === undefined) return; // a resource seen before
    if (!this.first.has(pool)) this.first.set(pool, resource);
    const connectSeconds = this.clients.claim(resource);
    if (t) return this.tracker.created(t, resource, connectSeconds);
    this.register(pool, (r) => this.tracker.created(r, resource, connectSeconds));
  }

  /** The pool's create failed with `err`: a pg connect failure makes it a pg pool and counts as its. */
  createFailed(pool: P, err: unknown): void {
    if (this.others.has(pool)) return;
    const failure = this.clients.takeFailure(err);
    if (!failure) return;
    if (!this.first.has(pool)) this.first.set(pool, failure.client);
    const t = this.registered(pool) ?? this.register(pool);
    this.clients.countFailure(failure, t);
  }

  /** The pool closes `resource`; `reason` unless one was decided at release. */
  closing(pool: P, resource: unknown, reason: CloseReason): void {
    const t = this.tracked(pool);
    if (t && isPgClient(resource) && PoolEntry.of(resource)?.pool === t) this.tracker.closed(t, resource, reason);
  }

  ending(pool: P): void {
    this.early.delete(pool);
    const t = this.registered(pool);
    if (t) this.tracker.ending(t);
  }

  private mustWait(pool: P): boolean {
    const max = this.shape.max(pool);
    return this.shape.free(pool) === 0 && max !== undefined && this.shape.used(pool) + this.shape.creating(pool) >= max;
  }

  /** Where the application created the pool (a Knex instance): what the census names if pools come in a burst. */
  origin(pool: P, site: StackHolder): void {
    if (this.registered(pool) || this.others.has(pool)) return;
    this.earlyOf(pool).t.firstUse = site;
  }

  private undecided(pool: P, above: Function): { t: TrackedPool<P>; queued: Set<CheckoutRequest> } | undefined {
    if (this.others.has(pool)) return undefined;
    const e = this.earlyOf(pool);
    // Registered later, from a promise callback: the census names this first use instead.
    e.t.firstUse ??= this.tracker.calledFrom ?? captureSite(above);
    return e;
  }

  private earlyOf(pool: P): { t: TrackedPool<P>; queued: Set<CheckoutRequest> } {
    let e = this.early.get(pool);
    if (!e) {
      const t = new TrackedPool(pool, this.kind);
      // A client its create code connects is a pg client: the pool is registered (named) then.
      t.firstClient = (client) => {
        if (!this.first.has(pool)) this.first.set(pool, client);
        if (!this.registered(pool)) this.register(pool);
      };
      this.early.set(pool, (e = { t, queued: new Set() }));
    }
    return e;
  }

  private register(pool: P, first?: (t: TrackedPool<P>) => void): TrackedPool<P> {
    const e = this.early.get(pool);
    this.early.delete(pool);
    const t = this.tracker.registry.track(pool, this.kind, (n) => this.attach(n, pool), e?.t);
    this.all.set(pool, t);
    first?.(t);
    if (e) for (const request of e.queued) this.tracker.queued(request);
    return t;
  }

  private leaveAlone(pool: P): void {
    this.others.add(pool);
    this.early.delete(pool);
  }
}

/** application_name as the client sends it, if set. */
function applicationName(client: PgClient | undefined): string | undefined {
  const app = client?.connectionParameters?.application_name;
  return typeof app === 'string' && app.trim() !== '' ? app.trim() : undefined;
}
