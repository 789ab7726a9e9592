// Where the application called Sequelize. A query, a model method or an unmanaged transaction
// awaits several times (hooks, retries, the version check of a cold pool) before Sequelize asks its
// pool for a connection, and its promise chains do not keep the application's async frames: the
// stack at sequelize-pool's acquire has no application frame. So the site is captured where the
// application calls in, synchronously: every public async method of Sequelize.prototype (query,
// transaction, sync, ...), of Model (findAll, create, ...) and of Model.prototype (save, reload,
// ...). It travels with the OpenTelemetry context (an AsyncLocalStorage under the preload or any
// SDK) to the checkout made later on that call's behalf. Without a context manager nothing travels
// and the checkout's own stack is used, as before.
import { context, createContextKey } from '@opentelemetry/api';
import type { PoolTracker } from '../pool/pool-tracker';
import type { StackHolder } from '../pool/checkout-site';
import { guard } from './resource-pool';
import { entryPoints } from './entry-points';
import type { Wrap } from './pg-pool';

type Proto = Record<string | symbol, unknown>;

const SITE = createContextKey('pg-pool-otel.sequelize-site');

export class SequelizeHooks {
  constructor(private readonly tracker: PoolTracker) {}

  /** The site of the Sequelize call this code runs on behalf of, if any. */
  site(): StackHolder | undefined {
    return context.active().getValue(SITE) as StackHolder | undefined;
  }

  /** Wraps the entry points of `target` (Sequelize.prototype, Model, Model.prototype). */
  patch(target: Proto, wrap: Wrap): void {
    const hooks = this;
    for (const name of entryPoints(target)) {
      const isTransaction = name === 'transaction';
      wrap(target, name, (original) =>
        function patchedEntry(this: unknown, ...args: unknown[]) {
          const caller = context.active();
          // An entry point called by another one (findAll calls query): the outer one is the application's.
          if (caller.getValue(SITE) !== undefined) return original.apply(this, args);
          const site = guard('sequelize entry hook', () => hooks.tracker.captureSite(patchedEntry))();
          if (!site) return original.apply(this, args);
          // A managed transaction's callback is application code: its own calls name their own lines.
          if (isTransaction) for (let i = 0; i < 2; i++) if (typeof args[i] === 'function') args[i] = context.bind(caller, args[i] as Function);
          return context.with(caller.setValue(SITE, site), () => original.apply(this, args));
        }
      );
    }
  }
}
