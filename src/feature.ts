// A feature built on pool tracking (leak detection, transaction checks, pool census, server
// sampling). It is told about pools and checkouts through PoolListener, contributes its gauges at
// collection time through MetricSource, and is given values, not getters, when it is built.
import type { PgPoolOtelSettings } from './settings';
import type { PoolListener } from './pool/pool-tracker';
import type { PoolRegistry } from './pool/pool-registry';
import type { MetricStore } from './telemetry/metric-store';
import type { MetricSink } from './telemetry/series';
import type { TracerHolder } from './query/query-tracker';
import type { ClientConnections } from './client/client-connections';
import type { SiteBudget } from './pool/site-budget';

export interface FeatureContext {
  /** Resolved once; updated in place when the instrumentation's config changes. */
  readonly settings: PgPoolOtelSettings;
  readonly registry: PoolRegistry;
  readonly store: MetricStore;
  readonly tracing: TracerHolder;
  /** Open bare pg.Client connections of this process. */
  readonly bareClients: ClientConnections;
  /** Which checkouts get their stack captured; asked why when a report meets one without. */
  readonly sites: SiteBudget;
}

export interface Feature extends PoolListener {
  /** The feature's gauges, read at collection time. */
  collect?(sink: MetricSink): void;
  /** Called when the instrumentation is disabled: stop timers, forget state. */
  stop?(): void;
}
