// Everything one instrumentation tracks, built once from values: the settings, the metric store,
// the pools and their entries, queries, bare clients and the features on top of them. Rebuilt
// (with the same store, so series continue) when a disabled instrumentation is enabled again.
import type { Tracer } from '@opentelemetry/api';
import type { PgPoolOtelSettings } from './settings';
import type { Feature, FeatureContext } from './feature';
import { ClientConnections } from './client/client-connections';
import { PgPoolHooks } from './hooks/pg-pool';
import { TarnHooks } from './hooks/tarn';
import { SequelizePoolHooks } from './hooks/sequelize-pool';
import { KnexHooks } from './hooks/knex';
import { SequelizeHooks } from './hooks/sequelize';
import { PoolRegistry } from './pool/pool-registry';
import { PoolTracker } from './pool/pool-tracker';
import { SiteBudget } from './pool/site-budget';
import { collectPoolGauges } from './pool/pool-gauges';
import { QueryTracker, type TracerHolder } from './query/query-tracker';
import { createMisuseFeatures } from './leaks/misuse-features';
import { ServerHeadroom } from './server/server-headroom';
import type { MetricStore } from './telemetry/metric-store';
import { reportInternalError } from './diag';

export class Core {
  readonly tracing: TracerHolder;
  readonly registry: PoolRegistry;
  readonly clients: ClientConnections;
  readonly queries: QueryTracker;
  readonly features: Feature[];
  /** Server headroom, also told of pg's JavaScript Client class as modules load. */
  readonly headroom: ServerHeadroom;
  readonly pools: PoolTracker;
  readonly pgPool: PgPoolHooks;
  readonly tarn: TarnHooks;
  readonly sequelizePool: SequelizePoolHooks;
  readonly knex: KnexHooks;
  readonly sequelize: SequelizeHooks;
  stopped = false;

  constructor(
    readonly store: MetricStore,
    readonly settings: PgPoolOtelSettings,
    tracer: Tracer
  ) {
    this.tracing = { tracer };
    this.registry = new PoolRegistry(store);
    this.clients = new ClientConnections(store);
    this.queries = new QueryTracker(store, this.tracing, settings);
    const sites = new SiteBudget(settings);
    const ctx: FeatureContext = { settings, registry: this.registry, store, tracing: this.tracing, bareClients: this.clients, sites };
    this.headroom = new ServerHeadroom(ctx);
    this.features = [...createMisuseFeatures(ctx), this.headroom];
    this.pools = new PoolTracker(this.registry, settings, sites, this.features);
    this.pgPool = new PgPoolHooks(this.pools);
    // Knex's and Sequelize's pools: their create code awaits, so their clients are claimed late.
    this.tarn = new TarnHooks(this.pools, this.clients);
    this.sequelize = new SequelizeHooks(this.pools);
    this.sequelizePool = new SequelizePoolHooks(this.pools, this.clients, () => this.sequelize.site());
    this.knex = new KnexHooks(this.pools, (pool, site) => this.tarn.poolCreatedAt(pool, site));
    store.addSource('pool gauge', { collect: (sink) => collectPoolGauges(sink, this.registry) });
    store.addSource('bare client gauge', this.clients);
    for (const f of this.features) if (f.collect) store.addSource(`${f.constructor.name} gauge`, f as Required<Pick<Feature, 'collect'>>);
  }

  /** Stops timers and detaches from every pool; what was measured stays readable. */
  stop(): void {
    this.stopped = true;
    for (const f of this.features) {
      try {
        f.stop?.();
      } catch (e) {
        reportInternalError('feature stop', e);
      }
    }
    this.registry.clear();
  }
}
