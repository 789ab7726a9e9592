// Live pools of this process and their unique names. Pools are held weakly: a pool the app drops
// without end() disappears from the metrics when it is collected.
import type { MetricStore } from '../telemetry/metric-store';
import { METRICS, type MetricDef } from '../telemetry/catalogue';
import type { MetricSink } from '../telemetry/series';
import { explicitPoolName, type ServerIdentity } from './pool-identity';
import { TrackedPool, type PoolKind } from './tracked-pool';

const MAX_RETIRED = 1000;
// Module-private, like the entries: each copy of the package tracks pools on its own.
const TRACKED = Symbol('pg-pool-otel.pool');
type WithTracked = { [TRACKED]?: TrackedPool };

export class PoolRegistry {
  private readonly live = new Set<TrackedPool>();
  private readonly names = new Set<string>();
  /** Pools registered since start, for pool-per-request detection. */
  created = 0;
  /**
   * Ended pools whose gauges must read zero until their name is taken again: a reader keeps the
   * last value of a series no longer reported. Names are reused, so this stays as small as the
   * set of names.
   */
  readonly retired = new Map<string, TrackedPool>();

  constructor(private readonly store: MetricStore) {}

  get<P extends object>(pool: P): TrackedPool<P> | undefined {
    const t = (pool as WithTracked)[TRACKED];
    return t && this.live.has(t) ? (t as TrackedPool<P>) : undefined;
  }

  /** The pool's tracked object, live or ended: an ending pool still takes its clients back. */
  owner<P extends object>(pool: P): TrackedPool<P> | undefined {
    return (pool as WithTracked)[TRACKED] as TrackedPool<P> | undefined;
  }

  /**
   * The pool's tracked object, registering it on first sight; `attach` runs once, for a new one
   * (given the pool, so that a caller on the hot path can pass one function made once).
   * `early`: the object its checkouts already refer to, for a pool registered only once its first
   * connection showed it talks to PostgreSQL (tarn, sequelize-pool).
   */
  track<P extends object>(pool: P, kind: PoolKind<P>, attach: (t: TrackedPool<P>, pool: P) => void, early?: TrackedPool<P>): TrackedPool<P> {
    const known = (pool as WithTracked)[TRACKED] as TrackedPool<P> | undefined;
    if (known && (this.live.has(known) || known.ended)) return known;
    const t = early ?? new TrackedPool(pool, kind);
    t.firstClient = undefined;
    Object.defineProperty(pool, TRACKED, { value: t, configurable: true, writable: true, enumerable: false });
    // The one place a pool is named: when it is registered, from the server its kind knows then
    // (pg-pool: its options, resolved as pg does; tarn, sequelize-pool: their first pg client, as
    // they are registered only once one showed they pool PostgreSQL connections).
    this.identify(t, pool, kind.serverOfOptions(pool));
    this.live.add(t);
    this.created++;
    attach(t, pool);
    return t;
  }

  /** Names the pool; a second live pool with the same base name gets `#2`, then `#3`, ... */
  private identify<P extends object>(t: TrackedPool<P>, pool: P, server: ServerIdentity): void {
    const base = explicitPoolName(pool) ?? t.kind.configuredName(pool) ?? `${server.address}:${server.port}/${server.namespace}`;
    let name = base;
    for (let i = 2; this.names.has(name); i++) name = `${base}#${i}`;
    this.names.add(name);
    this.retired.delete(name);
    t.identify(name, server, this.store);
  }

  unregister(t: TrackedPool): void {
    if (!this.live.delete(t)) return;
    t.ended = true;
    this.names.delete(t.name);
    if (this.retired.size >= MAX_RETIRED) this.retired.clear();
    this.retired.set(t.name, t);
  }

  /**
   * "An ended pool reads zero": each retired pool (but those in `except`, still observed by the
   * caller) observes `defs` at 0; the connection count at 0 in each state.
   */
  observeRetiredAsZero(sink: MetricSink, defs: readonly MetricDef[], except?: ReadonlySet<TrackedPool>): void {
    for (const t of this.retired.values()) {
      if (except?.has(t)) continue;
      for (const d of defs) {
        if (d === METRICS.connectionCount) {
          sink.observe(d, 0, t.idleAttributes);
          sink.observe(d, 0, t.usedAttributes);
        } else sink.observe(d, 0, t.attributes);
      }
    }
  }

  /** Forgets every pool, detaching their listeners (the instrumentation was disabled). */
  clear(): void {
    for (const t of this.live) {
      t.detach();
      const pool = t.pool as WithTracked | undefined;
      if (pool && pool[TRACKED] === t) delete pool[TRACKED];
    }
    this.live.clear();
    this.names.clear();
    this.retired.clear();
  }

  /** Live pools, dropping those the application let the garbage collector take. */
  *liveStates(): IterableIterator<TrackedPool> {
    for (const t of this.live) {
      if (t.pool === undefined) {
        this.unregister(t);
        continue;
      }
      yield t;
    }
  }
}
