// One pool, whatever library owns it (as HikariCP's HikariPool): its identity and the attributes
// every series of it carries, its aggregated measurements, the connections it has handed out, and
// how to read its own counts at collection time.
import type { Attributes } from '@opentelemetry/api';
import { METRICS } from '../telemetry/catalogue';
import type { MetricStore } from '../telemetry/metric-store';
import type { CounterSeries, HistogramSeries } from '../telemetry/series';
import { CLOSE_REASONS, type CloseReason } from './close-reason';
import type { StackHolder } from './checkout-site';
import type { PgClient } from '../pg/pg-types';
import { CheckoutList } from './checkout-list';
// Types only: an entry knows its pool and a pool lists its entries (no value import either way).
import type { PoolEntry } from './pool-entry';
import { serverAttributes, type ServerIdentity } from './pool-identity';

/** The pool's own state, read at collection time (never counted from events, which drift). */
export interface PoolCounts {
  /** Connections open or opening. */
  total: number;
  /** Connections idle in the pool. */
  idle: number;
  /** Checkout requests queued. */
  pending: number;
  /** The most connections the pool opens; undefined when it has no limit. */
  max: number | undefined;
  /** Idle connections kept from eviction. */
  min: number;
}

/** How to read one kind of pool (pg-pool, tarn, sequelize-pool). */
export interface PoolKind<P extends object = object> {
  /** Read at collection time. */
  counts(pool: P): PoolCounts;
  /** Whether a checkout requested now has to queue: nothing idle and no room to open one. */
  mustWait(pool: P): boolean;
  /** The server from the pool's options, for a pool whose first connection has not been seen. */
  serverOfOptions(pool: P): ServerIdentity;
  /** A name the pool's own options give it (e.g. application_name), if any. */
  configuredName(pool: P): string | undefined;
  /** How long the pool lets a new connection take before giving up, if it sets a limit. */
  createTimeoutMs(pool: P): number | undefined;
  /** Advice on risky options, one sentence each (logged once per configuration). */
  advice?(pool: P): string[];
  /** The pool's open connections, idle and in use (server sampling tells this process's backends by them). */
  clients(pool: P): Iterable<PgClient>;
  /**
   * The options the pool gives each new client, when it keeps them (pg-pool): the monitoring
   * connection is opened with them (a password function stays a function). Absent: the options
   * pg resolved for the pool's first client are used.
   */
  connectionOptions?(pool: P): Readonly<Record<string, unknown>> | undefined;
  /**
   * Called inside the pool's release of `client`: makes the pool close it instead of reusing it
   * (releaseInTransaction 'destroy'). Absent when the pool cannot be told (tarn).
   */
  discardOnRelease?(client: PgClient): void;
}

/** The pool's measurements: one series each, shared with any earlier pool of the same name. */
export class PoolSeries {
  readonly waitTime: HistogramSeries;
  readonly useTime: HistogramSeries;
  readonly createTime: HistogramSeries;
  readonly timeouts: CounterSeries;
  readonly waits: CounterSeries;
  readonly closed: Record<CloseReason, CounterSeries>;

  constructor(
    private readonly store: MetricStore,
    readonly attributes: Attributes
  ) {
    this.waitTime = store.histogram(METRICS.waitTime, attributes);
    this.useTime = store.histogram(METRICS.useTime, attributes);
    this.createTime = store.histogram(METRICS.createTime, attributes);
    // Counters exist from the start at 0, so that increase() and rate() see the first event.
    this.timeouts = store.counter(METRICS.timeouts, attributes);
    this.waits = store.counter(METRICS.waits, attributes);
    this.closed = Object.fromEntries(
      CLOSE_REASONS.map((reason) => [reason, store.counter(METRICS.closed, { ...attributes, reason })])
    ) as Record<CloseReason, CounterSeries>;
  }

  /** A counter that appears with its first event (leak detections, releases in a transaction). */
  lazyCounter(def: (typeof METRICS)[keyof typeof METRICS], extra?: Attributes): CounterSeries {
    return this.store.counter(def, extra ? { ...this.attributes, ...extra } : this.attributes);
  }
}

export class TrackedPool<P extends object = object> {
  private readonly ref: WeakRef<P>;
  // Name, server, attributes and series: set once, by PoolRegistry.track when the pool is registered
  // (see there), before anything reads them.
  name = '';
  server: ServerIdentity = { address: '', port: 0, namespace: '' };
  /** pool name + server attributes, shared by every pool series: the one place they are built (by identify) */
  attributes: Attributes = {};
  idleAttributes: Attributes = {};
  usedAttributes: Attributes = {};
  ended = false;
  series!: PoolSeries;
  readonly createdAt = Date.now();
  /** Connections handed out now, in checkout order. */
  readonly checkedOut = new CheckoutList<PoolEntry>();
  /** Where the pool was first used, for a pool registered later from a promise callback (tarn, sequelize-pool). */
  firstUse: StackHolder | undefined;
  /** Detaches the listeners the pool's hooks attached. */
  detach: () => void = () => {};
  /**
   * Set on a pool not registered yet (tarn, sequelize-pool): called with the first pg client its
   * create code connects, which shows it is a PostgreSQL pool and registers (so names) it.
   */
  firstClient: ((client: PgClient) => void) | undefined;

  constructor(
    pool: P,
    readonly kind: PoolKind<P>
  ) {
    this.ref = new WeakRef(pool);
  }

  get pool(): P | undefined {
    return this.ref.deref();
  }

  identify(name: string, server: ServerIdentity, store: MetricStore): void {
    this.name = name;
    this.server = server;
    this.attributes = Object.freeze({ 'db.client.connection.pool.name': name, ...serverAttributes(server) });
    this.idleAttributes = Object.freeze({ ...this.attributes, 'db.client.connection.state': 'idle' });
    this.usedAttributes = Object.freeze({ ...this.attributes, 'db.client.connection.state': 'used' });
    this.series = new PoolSeries(store, this.attributes);
  }
}
