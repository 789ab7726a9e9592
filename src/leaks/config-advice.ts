// Advice on risky pool options, logged once per pool configuration at the pool's first
// connection (so that the pool already has its name). Advice only: nothing is changed.
import type { Feature, FeatureContext } from '../feature';
import { log } from '../diag';
import type { PgPoolOptions } from '../pg/pg-types';
import type { PoolEntry } from '../pool/pool-entry';
import type { TrackedPool } from '../pool/tracked-pool';

/** Below this idleTimeoutMillis a pool closes connections between ordinary bursts of traffic. */
export const CHURN_IDLE_TIMEOUT_MS = 1000;
/** Distinct configurations advised at most (pool-per-request must not flood the log). */
const MAX_ADVISED = 100;

/** The advice for a pool's options, one sentence each; empty when there is nothing to say. */
export function adviceFor(options: PgPoolOptions): string[] {
  const advice: string[] = [];
  if (!options.connectionTimeoutMillis) {
    advice.push(
      'connectionTimeoutMillis is not set, so when every connection is in use pool.connect() and pool.query() ' +
        'wait forever; set it (e.g. 5000) so an exhausted pool fails fast and shows in db.client.connection.timeouts'
    );
  }
  const idle = options.idleTimeoutMillis;
  if (typeof idle === 'number' && idle > 0 && idle < CHURN_IDLE_TIMEOUT_MS) {
    advice.push(
      `idleTimeoutMillis is ${idle} ms, so idle connections close between bursts and are opened again ` +
        `(churn: pg_pool.connection.closed{reason=idle_timeout}); ${CHURN_IDLE_TIMEOUT_MS} ms or more (default 10000) avoids it`
    );
  }
  if (!options.maxLifetimeSeconds && (options.maxUses === undefined || options.maxUses === Infinity)) {
    advice.push(
      'neither maxLifetimeSeconds nor maxUses is set, so connections are never recycled: after a failover, ' +
        'a DNS change or behind a load balancer or PgBouncer the pool keeps its old connections; ' +
        'maxLifetimeSeconds (e.g. 1800) renews them'
    );
  }
  return advice;
}

export class ConfigAdvice implements Feature {
  private readonly advisedPools = new WeakSet<TrackedPool>();
  private readonly advisedConfigs = new Set<string>();

  constructor(private readonly ctx: FeatureContext) {}

  clientConnected(entry: PoolEntry): void {
    const t = entry.pool;
    if (this.advisedPools.has(t)) return;
    this.advisedPools.add(t);
    if (!this.ctx.settings.configAdvice) return;
    const pool = t.pool;
    const advice = pool ? (t.kind.advice?.(pool) ?? []) : [];
    if (advice.length === 0) return;
    // Pools with the same options get the same advice: say it once.
    const key = advice.join('|');
    if (this.advisedConfigs.has(key) || this.advisedConfigs.size >= MAX_ADVISED) return;
    this.advisedConfigs.add(key);
    log().info(
      `pool "${t.name}" configuration advice (PG_POOL_OTEL_CONFIG_ADVICE=false silences this):` +
        advice.map((a) => `\n  - ${a}`).join('')
    );
  }
}
