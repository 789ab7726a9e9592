// Where a Knex transaction was started. knex.transaction() checks out from a promise callback
// (Transaction's constructor chains it on a resolved promise), so the stack at tarn's acquire holds
// only Knex frames and no async frame leads back to the application. The site is captured where
// the application calls in (the PostgreSQL dialects' Client.prototype.transaction) and handed to
// the checkout that Transaction.prototype.acquireConnection makes for it. Likewise the pool of a
// Knex instance is first used from a promise callback: where knex(config) was called is kept.
import type { PoolTracker } from '../pool/pool-tracker';
import { captureSite, type StackHolder } from '../pool/pool-entry';
import { guard } from './resource-pool';
import type { Wrap } from './pg-pool';

type Proto = Record<string | symbol, unknown>;

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

  /** Transaction.prototype: its acquireConnection checks out synchronously, for the site taken above. */
  patchTransaction(proto: Proto, wrap: Wrap): void {
    const hooks = this;
    wrap(proto, 'acquireConnection', (acquireConnection) =>
      function patchedAcquireConnection(this: object, ...args: unknown[]) {
        const tracker = hooks.tracker;
        const previous = tracker.calledFrom;
        tracker.calledFrom = hooks.sites.get(this);
        try {
          return acquireConnection.apply(this, args);
        } finally {
          tracker.calledFrom = previous;
        }
      }
    );
  }
}
