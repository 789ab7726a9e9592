// Hooks into sequelize-pool, the pool under Sequelize 6 and 7: Pool.prototype's acquire, release,
// destroy, drain, destroyAllNow, the idle sweep (_removeIdle), dispatch (_dispense, where
// validation fails) and the create path (_createResource, _addResourceTo*). Sequelize's postgres
// dialect pools pg clients in it; its other dialects' pools are left alone (decided by the first
// connection, see resource-pool.ts). Counts are read from the pool's own getters at collection time.
import { PoolEntry } from '../pool/pool-entry';
import { type StackHolder } from '../pool/checkout-site';
import type { PoolTracker } from '../pool/pool-tracker';
import type { PoolKind } from '../pool/tracked-pool';
import type { ClientConnections } from '../client/client-connections';
import type { CloseReason } from '../pool/close-reason';
import { ResourcePoolHooks, answeredAcquire, guard, isPgClient } from './resource-pool';
import type { Wrap } from './pg-pool';
import type { PgClient } from '../pg/pg-types';
import { withSlot } from '../slot';

type Proto = Record<string | symbol, unknown>;

/** The parts of sequelize-pool's Pool (6.x to 8.x) read here. */
export interface SequelizePool {
  readonly size: number;
  readonly available: number;
  readonly using: number;
  readonly waiting: number;
  readonly maxSize: number;
  readonly minSize: number;
  readonly name?: unknown;
  maxUsesPerResource?: number;
  _draining?: boolean;
  _inUseObjects?: Array<{ resource: unknown; useCount: number }>;
  _availableObjects?: Array<{ resource: unknown }>;
  destroy(resource: unknown): Promise<void>;
}

// The names Sequelize gives its own pools: they say nothing the server does not, except the role.
const SEQUELIZE_ROLES: Record<string, string> = { sequelize: '', 'sequelize:read': ':read', 'sequelize:write': ':write' };

export class SequelizePoolHooks {
  readonly resourceHooks: ResourcePoolHooks<SequelizePool>;
  /** The pool running its idle sweep or its dispatch now: why what it destroys is closed. */
  sweeping: SequelizePool | undefined;
  dispensing: SequelizePool | undefined;
  private readonly closing = new WeakSet<SequelizePool>();
  /** Clients a feature asked to close at release (releaseInTransaction 'destroy'). */
  private readonly discard = new WeakSet<object>();

  constructor(
    tracker: PoolTracker,
    clients: ClientConnections,
    /** Where the application called Sequelize for the checkout requested now (hooks/sequelize.ts). */
    private readonly calledFrom: () => StackHolder | undefined = () => undefined
  ) {
    this.resourceHooks = new ResourcePoolHooks<SequelizePool>(
      tracker,
      clients,
      {
        free: (p) => p.available,
        used: (p) => p.using,
        waiting: (p) => p.waiting,
        // size counts connections being created too (and drops at destroy, with the lists).
        creating: (p) => Math.max(0, p.size - p.available - p.using),
        max: (p) => (Number.isFinite(p.maxSize) ? p.maxSize : undefined),
        min: (p) => (Number.isFinite(p.minSize) ? Math.max(0, Math.min(p.minSize, p.maxSize)) : 0),
        *resources(p) {
          for (const list of [p._availableObjects, p._inUseObjects]) for (const item of list ?? []) yield item.resource;
        },
        ownName(p, first) {
          const own = typeof p.name === 'string' ? p.name.trim() : '';
          const role = SEQUELIZE_ROLES[own];
          if (role === undefined) return own || undefined; // a raw sequelize-pool user's own name
          if (!role) return undefined;
          // Sequelize's read and write pools: the usual name, and which of the two this is.
          const app = first?.connectionParameters?.application_name;
          const base = typeof app === 'string' && app.trim() ? app.trim() : first ? `${first.host || 'localhost'}:${first.port ?? 5432}/${first.database ?? ''}` : '';
          return base ? base + role : undefined;
        },
      },
      (t) => tracker.registered(t),
      { discardOnRelease: (client) => this.discard.add(client) }
    );
  }

  get kind(): PoolKind<SequelizePool> {
    return this.resourceHooks.kind;
  }

  /** Patches sequelize-pool's Pool.prototype; `TimeoutError` is that copy's class for acquire timeouts. */
  patch(proto: Proto, wrap: Wrap, TimeoutError: Function | undefined): void {
    const hooks = this;
    const resourceHooks = this.resourceHooks;
    const tracker = resourceHooks.tracker;
    const isTimeout = (err: unknown) => typeof TimeoutError === 'function' && err instanceof TimeoutError;

    wrap(proto, 'acquire', (acquire) =>
      function patchedAcquire(this: SequelizePool, ...args: unknown[]) {
        const request = this._draining
          ? undefined
          : guard('sequelize-pool acquire hook', () =>
              withSlot(tracker, 'calledFrom', tracker.calledFrom ?? hooks.calledFrom(), () => resourceHooks.request(this, patchedAcquire))
            )();
        const p = acquire.apply(this, args) as Promise<unknown> | undefined;
        if (!request || typeof p?.then !== 'function') return p;
        return answeredAcquire(resourceHooks, this, request, p, isTimeout);
      }
    );

    wrap(proto, 'release', (release) =>
      function patchedRelease(this: SequelizePool, ...args: unknown[]) {
        const resource = args[0];
        const discard = guard('sequelize-pool release hook', () => {
          const t = resourceHooks.tracked(this);
          const entry = PoolEntry.of(resource as object | undefined);
          const held = this._inUseObjects?.find((w) => w.resource === resource);
          if (!t || entry?.pool !== t || !held) return false;
          // The pool closes the connection on this release once it has been used maxUses times.
          const reason: CloseReason | undefined = held.useCount + 1 >= (this.maxUsesPerResource ?? Infinity) ? 'max_uses' : undefined;
          tracker.released(t, entry.client, undefined, reason);
          return reason === undefined && hooks.discard.delete(entry.client);
        })();
        // Closed instead of put back, through the pool's own public destroy (as it does at maxUses).
        if (discard) return void this.destroy(resource);
        return release.apply(this, args);
      }
    );

    wrap(proto, 'destroy', (destroy) =>
      function patchedDestroy(this: SequelizePool, ...args: unknown[]) {
        guard('sequelize-pool destroy hook', () => {
          const resource = args[0];
          const t = resourceHooks.tracked(this);
          const entry = PoolEntry.of(resource as object | undefined);
          if (!t || entry?.pool !== t || !isPgClient(resource) || !hooks.holds(this, resource)) return;
          const reason = hooks.reason(this, entry.client, entry.checkedOut);
          // Destroyed while lent out: released and closed at once.
          if (entry.checkedOut) tracker.released(t, entry.client, true, reason);
          resourceHooks.closing(this, resource, reason);
        })();
        return destroy.apply(this, args);
      }
    );

    for (const method of ['drain', 'destroyAllNow']) {
      wrap(proto, method, (original) =>
        function patchedEnd(this: SequelizePool, ...args: unknown[]) {
          guard('sequelize-pool end hook', () => {
            hooks.closing.add(this);
            resourceHooks.ending(this);
          })();
          return original.apply(this, args);
        }
      );
    }

    const during = (method: string, field: 'sweeping' | 'dispensing') =>
      wrap(proto, method, (original) =>
        function patched(this: SequelizePool, ...args: unknown[]) {
          return withSlot(hooks, field, this, original, this, args);
        }
      );
    during('_removeIdle', 'sweeping');
    during('_dispense', 'dispensing');

    wrap(proto, '_createResource', (create) =>
      function patchedCreateResource(this: SequelizePool, ...args: unknown[]) {
        return resourceHooks.creating(this, () => create.apply(this, args));
      }
    );

    // A created connection enters the pool through one of these, with a use count of 0 (a failed
    // create is seen by the acquire it fails). Called again for reused connections: created() knows them.
    for (const method of ['_addResourceToInUseObjects', '_addResourceToAvailableObjects']) {
      wrap(proto, method, (add) =>
        function patchedAdd(this: SequelizePool, ...args: unknown[]) {
          if (args[1] === 0) guard('sequelize-pool create bookkeeping', () => resourceHooks.created(this, args[0]))();
          return add.apply(this, args);
        }
      );
    }
  }

  private holds(pool: SequelizePool, resource: unknown): boolean {
    return !!(pool._inUseObjects?.some((w) => w.resource === resource) || pool._availableObjects?.some((w) => w.resource === resource));
  }

  /** Why the pool closes a connection now (a reason decided at release, such as max_uses, comes first). */
  private reason(pool: SequelizePool, client: PgClient, lent: boolean): CloseReason {
    if (pool._draining || this.closing.has(pool)) return 'pool_end';
    if (this.sweeping === pool) return 'idle_timeout';
    // Validation failed when about to be handed out: under Sequelize, the client errored or ended.
    if (this.dispensing === pool) return 'broken';
    // Sequelize destroys a client on its 'error' event: the connection died, idle or lent out.
    if (client._queryable === false) return lent ? 'broken' : 'idle_error';
    // A working client discarded (Sequelize after a failed rollback, or the application).
    return 'released_with_error';
  }
}
