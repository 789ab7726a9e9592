// What one scenario showed: peaks of the gauges seen live, final counter values per service
// process (each process lives for one scenario, so its counters start at zero), the package's
// log reports and the alerts Prometheus raised.
import type { Frame } from './metrics';
import { sum, type Sample } from './prom-text';
import type { LoadStats } from './load';

export interface Observed {
  requests: LoadStats;
  /** False when the service exports none of the pool series (run without the preload). */
  instrumented: boolean;
  leakDetections?: number;
  leakedPeak?: number;
  oldestAgePeak?: number;
  timeouts?: number;
  waitingPeak?: number;
  p95WaitPeak?: number;
  /** p95 wait of the last window seen: the steady state. */
  p95WaitLast?: number;
  closedByReason: Record<string, number>;
  created?: number;
  releasedInTransaction?: number;
  errorsByType: Record<string, number>;
  serverPeak?: number;
  usable?: number;
  poolMaxSum?: number;
  reports: string[];
  /** Alert name to the worst state seen (firing beats pending). */
  alerts: Map<string, string>;
}

const peak = (a: number | undefined, b: number | undefined) => (b === undefined ? a : Math.max(a ?? b, b));
const add = (a: number | undefined, b: number | undefined) => (b === undefined ? a : (a ?? 0) + b);

function byLabel(samples: Sample[], name: string, label: string, into: Record<string, number>): void {
  for (const s of samples) {
    if (s.name !== name) continue;
    const key = s.labels[label] ?? 'unknown';
    into[key] = (into[key] ?? 0) + s.value;
  }
}

export class Tracker {
  private last = new Map<string, Sample[]>();
  private peaks: Partial<Record<'leaked' | 'oldest' | 'waiting' | 'p95' | 'server' | 'usable' | 'poolMax', number>> = {};
  private lastP95: number | undefined;
  readonly reports: string[] = [];
  readonly alerts = new Map<string, string>();

  addAlerts(alerts: { name: string; state: string }[]): void {
    for (const a of alerts) if (this.alerts.get(a.name) !== 'firing') this.alerts.set(a.name, a.state);
  }

  add(frame: Frame): void {
    for (const [service, samples] of frame.samples) this.last.set(service, samples);
    const p = this.peaks;
    let poolMax: number | undefined;
    const p95s = frame.pools.map((r) => r.p95Wait).filter((v): v is number => v !== undefined);
    if (p95s.length > 0) this.lastP95 = Math.max(...p95s);
    for (const row of frame.pools) {
      p.leaked = peak(p.leaked, row.leaked);
      p.oldest = peak(p.oldest, row.oldestAge);
      p.waiting = peak(p.waiting, row.waiting);
      p.p95 = peak(p.p95, row.p95Wait);
      poolMax = add(poolMax, row.max);
    }
    p.poolMax = peak(p.poolMax, poolMax);
    p.server = peak(p.server, frame.server.connections);
    p.usable = frame.server.usable ?? p.usable;
  }

  observed(requests: LoadStats): Observed {
    const total = (name: string) => {
      let out: number | undefined;
      for (const samples of this.last.values()) out = add(out, sum(samples, name));
      return out;
    };
    const closedByReason: Record<string, number> = {};
    const errorsByType: Record<string, number> = {};
    for (const samples of this.last.values()) {
      byLabel(samples, 'pg_pool_connection_closed_total', 'reason', closedByReason);
      byLabel(samples, 'pg_pool_connection_errors_total', 'error_type', errorsByType);
    }
    return {
      requests,
      instrumented: [...this.last.values()].some((s) => s.some((x) => x.name.startsWith('db_client_connection_'))),
      leakDetections: total('pg_pool_checkout_leak_detections_total'),
      leakedPeak: this.peaks.leaked,
      oldestAgePeak: this.peaks.oldest,
      timeouts: total('db_client_connection_timeouts_total'),
      waitingPeak: this.peaks.waiting,
      p95WaitPeak: this.peaks.p95,
      p95WaitLast: this.lastP95,
      closedByReason,
      created: total('db_client_connection_create_time_count'),
      releasedInTransaction: total('pg_pool_checkout_released_in_transaction_total'),
      errorsByType,
      serverPeak: this.peaks.server,
      usable: this.peaks.usable,
      poolMaxSum: this.peaks.poolMax,
      reports: this.reports,
      alerts: this.alerts,
    };
  }
}
