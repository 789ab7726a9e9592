// A feature built on pool tracking (leak detection, transaction checks, server sampling). The
// instrumentation owns the list; each feature gets the meter whenever the provider changes and
// pool lifecycle callbacks through PoolLifecycleListener.
import type { Meter, Tracer } from '@opentelemetry/api';
import type { PgPoolOtelSettings } from './config';
import type { PoolLifecycleListener, PoolTracker } from './pool/pool-tracker';
import type { PgClient } from './pg-types';

export interface FeatureContext {
  settings(): PgPoolOtelSettings;
  pools: PoolTracker;
  tracer(): Tracer;
  /** Open bare pg.Client connections of this process. */
  bareClients(): Iterable<PgClient>;
}

export interface Feature extends PoolLifecycleListener {
  /** Creates the feature's instruments on `meter`; called again when the meter provider changes. */
  useMeter?(meter: Meter): void;
  /** Called when the instrumentation is disabled: stop timers, forget state. */
  stop?(): void;
}
