// Where the application called Knex. Knex checks out from promise callbacks: a transaction's
// checkout is chained on a resolved promise, and an awaited builder runs from the `then` that the
// await calls in a microtask. The stack at tarn's acquire then holds only Knex frames and no async
// frame leads back to the application. So the site is captured where the application calls in,
// synchronously: a builder's creation (knex('t'), knex.raw(), knex.schema; queryBuilder, raw and
// schemaBuilder of the Client) and the PostgreSQL dialects' Client.prototype.transaction. It is
// handed to the checkout made for that builder (Runner.prototype.ensureConnection) or transaction
// (Transaction.prototype.acquireConnection). Likewise the pool of a Knex instance is first used
// from a promise callback: where knex(config) was called is kept.
import type { PoolTracker } from '../pool/pool-tracker';
import { captureSite, type StackHolder } from '../pool/checkout-site';
import { guard } from './resource-pool';
import { KNEX_BUILDERS } from './entry-points';
import type { Wrap } from './pg-pool';
import { withSlot } from '../slot';

type Proto = Record<string | symbol, unknown>;

/** Client methods that make a builder the application runs later. */

export class KnexHooks {
  private readonly sites = new WeakMap<object, StackHolder>();

  constructor(
    private readonly tracker: PoolTracker,
    /** Tells the tarn hooks where a Knex instance's pool was created. */
    private readonly poolCreatedAt: (pool: object, site: StackHolder) => void
  ) {}

  /** Knex's base Client.prototype: initializePool() runs inside knex(config), in the application's call. */
  patchBaseClient(proto: Proto, wrap: Wrap): void {
    const hooks = this;
    wrap(proto, 'initializePool', (initializePool) =>
      function patchedInitializePool(this: { pool?: unknown }, ...args: unknown[]) {
        const result = initializePool.apply(this, args);
        guard('knex pool hook', () => {
          // Once per Knex instance: a pool made per request is named by the code that made it.
          if (this.pool !== null && typeof this.pool === 'object') hooks.poolCreatedAt(this.pool, captureSite(patchedInitializePool));
        })();
        return result;
      }
    );
  }

  /** A dialect's Client.prototype (postgres, cockroachdb, redshift): transaction() takes the site. */
  patchClient(proto: Proto, wrap: Wrap): void {
    const hooks = this;
    wrap(proto, 'transaction', (transaction) =>
      function patchedTransaction(this: unknown, ...args: unknown[]) {
        const site = guard('knex transaction hook', () => hooks.tracker.captureSite(patchedTransaction))();
        const trx = transaction.apply(this, args);
        if (site && trx !== null && typeof trx === 'object') hooks.sites.set(trx, site);
        return trx;
      }
    );
  }

  /** Client.prototype (the base one and a dialect's own overrides): a builder remembers where it was made. */
  patchBuilders(proto: Proto, wrap: Wrap): void {
    const hooks = this;
    for (const name of KNEX_BUILDERS) {
      if (!Object.prototype.hasOwnProperty.call(proto, name) || typeof proto[name] !== 'function') continue;
      wrap(proto, name, (original) =>
        function patchedBuilder(this: unknown, ...args: unknown[]) {
          const builder = original.apply(this, args);
          if (builder !== null && typeof builder === 'object') {
            const site = guard('knex builder hook', () => hooks.tracker.captureSite(patchedBuilder))();
            if (site) hooks.sites.set(builder, site);
          }
          return builder;
        }
      );
    }
  }

  /** Runner.prototype: ensureConnection checks out synchronously for its builder, which carries the site. */
  patchRunner(proto: Proto, wrap: Wrap): void {
    this.during(proto, wrap, 'ensureConnection', (runner) => (runner as { builder?: object }).builder);
  }

  /** Transaction.prototype: its acquireConnection checks out synchronously, for the site taken above. */
  patchTransaction(proto: Proto, wrap: Wrap): void {
    this.during(proto, wrap, 'acquireConnection', (trx) => trx);
  }

  /** Wraps `method` so that a checkout it makes synchronously takes the site kept for `key(this)`. */
  private during(proto: Proto, wrap: Wrap, method: string, key: (self: object) => object | undefined): void {
    const hooks = this;
    wrap(proto, method, (original) =>
      function patchedDuring(this: object, ...args: unknown[]) {
        const tracker = hooks.tracker;
        const k = key(this);
        return withSlot(tracker, 'calledFrom', (k && hooks.sites.get(k)) ?? tracker.calledFrom, original, this, args);
      }
    );
  }
}
