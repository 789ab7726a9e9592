// One PostgreSQL server (address, port) as seen by this process: the pools that talk to it, its
// limits (read once), the last good pg_stat_activity sample and when it was taken. Every query runs
// on a client lent by one of those pools (idle-lease.ts): an idle one when the timer fires, or, when
// the timer found none idle (a saturated pool), the next one released, before the queued request
// that would get it. So the sample stays fresh under saturation and no connection is ever opened.
import type { Attributes } from '@opentelemetry/api';
import type { PgClient, PgPool } from '../pg-types';
import type { TrackedPool } from '../pool/tracked-pool';
import { log, reportInternalError } from '../diag';
import { borrowIdleClient, canBorrow, lendOnRelease, type Lease } from './idle-lease';
import { internalQuery, InternalQueryTimeout } from './internal-query';
import { LIMITS_SQL, parseLimits, type ServerLimits } from './server-limits';
import { ACTIVITY_SQL, parseActivity, type ActivitySample } from './activity-sample';

/** A monitoring query slower than this means something is wrong: the client is closed, not reused. */
export const QUERY_TIMEOUT_MS = 5_000;
/** Failed limit reads are retried at most this often. */
const LIMITS_RETRY_MS = 30_000;

export interface MonitorHooks {
  intervalMs(): number;
  /** Backend pids of this process's bare clients (not in a pool) connected to this server. */
  barePids(monitor: ServerMonitor): Iterable<number>;
  sampleFailed(attributes: Attributes): void;
}

export class ServerMonitor {
  readonly attributes: Attributes;
  readonly pools = new Set<TrackedPool<PgPool>>();
  limits: ServerLimits | undefined;
  sample: ActivitySample | undefined;
  /** Unix time in seconds of the last good sample. */
  sampledAt: number | undefined;
  private running = false;
  private closed = false;
  private scheduled = false;
  private lastMissAt: number | undefined;
  /** The timer found no idle client: sample on the next release instead (at most once per tick). */
  private overdue = false;
  private limitsRetryAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly address: string,
    readonly port: number,
    private readonly hooks: MonitorHooks
  ) {
    this.attributes = Object.freeze({ 'server.address': address, 'server.port': port });
  }

  addPool(state: TrackedPool<PgPool>): void {
    if (this.closed) return;
    this.pools.add(state);
    const interval = this.hooks.intervalMs();
    if (!this.timer && interval > 0) {
      this.timer = setInterval(() => this.attempt(true), interval);
      this.timer.unref();
    }
  }

  removePool(state: TrackedPool<PgPool>): void {
    this.pools.delete(state);
    if (this.pools.size === 0) this.pause();
  }

  /** For good (the instrumentation was disabled): no timer, no further queries. */
  close(): void {
    this.closed = true;
    this.pools.clear();
    this.pause();
  }

  private pause(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * From pg-pool's synchronous 'release' event. With requests queued the client goes straight to
   * the next one and the timer never finds an idle client: when a sample is overdue, it is taken on
   * this client before that request gets it. Otherwise, reads what is still missing once the client
   * is back on the idle list.
   */
  released(state: TrackedPool<PgPool>, client: PgClient, err: unknown): void {
    try {
      const pool = state.pool;
      const due = this.overdue && this.hooks.intervalMs() > 0;
      if (due && pool && !state.ended && !this.running && !this.closed && (pool.waitingCount | 0) > 0) {
        const wantLimits = !this.limits && Date.now() >= this.limitsRetryAt;
        const claimed = lendOnRelease(pool, client, err, (lease) => {
          if (lease && !this.closed) return this.start(lease, wantLimits, true);
          lease?.giveBack(false);
          this.running = false;
          this.overdue = !lease;
        });
        if (claimed) {
          // Taken from now on: no second claim, and the timer does not borrow meanwhile.
          this.overdue = false;
          this.running = true;
          return;
        }
      }
    } catch (e) {
      reportInternalError('server sample on release', e);
    }
    this.soon();
  }

  /** After a release: read what is still missing once the client is back on the idle list. */
  soon(): void {
    const needsSample = (this.sampledAt === undefined || this.overdue) && this.hooks.intervalMs() > 0;
    if (this.closed || this.scheduled || this.running || (this.limits && !needsSample)) return;
    // A saturated pool has no idle client on most releases: try again at most every 100 ms rather
    // than scanning on every release.
    if (this.lastMissAt !== undefined && Date.now() - this.lastMissAt < 100) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.attempt(needsSample);
    }).unref();
  }

  /** Borrows an idle client if one is free right now and runs what is due on it. */
  attempt(sampleDue: boolean): void {
    try {
      if (this.running || this.closed) return;
      const wantLimits = !this.limits && Date.now() >= this.limitsRetryAt;
      const wantSample = sampleDue && this.hooks.intervalMs() > 0;
      if (!wantLimits && !wantSample) return;
      // Nothing to borrow: skipped; the last sample ages and its timestamp shows it.
      const lease = this.borrow();
      if (!lease) {
        this.lastMissAt = Date.now();
        if (wantSample) this.overdue = true;
        return;
      }
      this.lastMissAt = undefined;
      this.overdue = false;
      this.start(lease, wantLimits, wantSample);
    } catch (e) {
      reportInternalError('server sample', e);
    }
  }

  private start(lease: Lease, wantLimits: boolean, wantSample: boolean): void {
    this.running = true;
    void this.run(lease, wantLimits, wantSample).finally(() => {
      this.running = false;
    });
  }

  private borrow(): Lease | undefined {
    let best: PgPool | undefined;
    for (const state of this.pools) {
      const pool = state.pool;
      if (!pool || state.ended) {
        this.pools.delete(state);
        continue;
      }
      // The pool with the most idle clients: a concurrent checkout most likely still finds one.
      if (canBorrow(pool) && (!best || pool.idleCount > best.idleCount)) best = pool;
    }
    if (this.pools.size === 0) this.pause();
    if (!best) return undefined;
    const lease = borrowIdleClient(best);
    return typeof lease === 'string' ? undefined : lease;
  }

  private async run(lease: Lease, wantLimits: boolean, wantSample: boolean): Promise<void> {
    let broken = false;
    try {
      if (wantLimits) {
        try {
          this.limits = parseLimits((await internalQuery(lease.client, LIMITS_SQL, [], QUERY_TIMEOUT_MS)).rows);
        } catch (e) {
          this.limitsRetryAt = Date.now() + LIMITS_RETRY_MS;
          broken = e instanceof InternalQueryTimeout;
          this.warn('reading max_connections', e);
          if (broken) return;
        }
      }
      // Checkouts wait for this client: give it back now, sample another time.
      if (wantSample && wantLimits && lease.wanted()) {
        this.overdue = true;
        return;
      }
      if (wantSample) {
        try {
          const pids = [...this.ownPids()];
          const rows = (await internalQuery(lease.client, ACTIVITY_SQL, [pids], QUERY_TIMEOUT_MS)).rows;
          this.sample = parseActivity(rows);
          this.sampledAt = Date.now() / 1000;
        } catch (e) {
          broken = e instanceof InternalQueryTimeout;
          this.hooks.sampleFailed(this.attributes);
          this.warn('sampling pg_stat_activity', e);
        }
      }
    } catch (e) {
      reportInternalError('server sample', e);
    } finally {
      try {
        lease.giveBack(broken);
      } catch (e) {
        reportInternalError('server sample give back', e);
      }
    }
  }

  /** Backend pids of every client this process has open to this server. */
  private *ownPids(): IterableIterator<number> {
    for (const state of this.pools) {
      const pool = state.pool;
      if (pool) for (const c of state.kind.clients(pool)) if (typeof c.processID === 'number') yield c.processID;
    }
    // Bare clients, and pools the sampler cannot borrow from (Knex, Sequelize).
    yield* this.hooks.barePids(this);
  }


  private readonly warned = new Set<string>();
  private warn(what: string, err: unknown): void {
    // Once per kind of failure: a server that refuses every sample must not flood the app's logs.
    const code = (err as { code?: unknown } | null)?.code;
    const key = `${what}:${typeof code === 'string' ? code : ''}`;
    if (this.warned.has(key)) return;
    this.warned.add(key);
    const message = (err as { message?: unknown } | null)?.message;
    log().warn(
      `${what} on ${this.address}:${this.port} failed (further failures of this kind are only counted): ${
        typeof message === 'string' ? message : String(err)
      }`
    );
  }
}
