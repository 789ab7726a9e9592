// The story, one scenario at a time: which service processes run (with which pool settings), what
// load they get, what to watch, and how the summary tells whether the package saw the problem.
import type { Stream, Request } from './load';
import type { Observed } from './observe';
import { count, none, seconds } from './format';

export const SCENARIO_NAMES = ['healthy', 'leak', 'storm', 'churn', 'transaction', 'fleet'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export interface ServicePlan {
  name: string;
  /** Pool settings for this process (read by examples/service/db.js). */
  env: Record<string, string>;
  /** Started this long after the scenario begins: the fleet grows one process at a time. */
  delayMs: number;
}

export interface Verdict {
  /** True when the scenario's problem was seen (for `healthy`: when nothing bad was seen). */
  ok: boolean;
  word: string;
  text: string;
}

export interface Scenario {
  name: ScenarioName;
  title: string;
  watch: string;
  seconds: number;
  services(usableConnections: number, seconds: number): ServicePlan[];
  load(baseUrl: string, plan: ServicePlan): Stream[];
  verdict(o: Observed): Verdict;
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
const sku = () => `SKU-${1 + Math.floor(Math.random() * 100)}`;
const account = () => 1 + Math.floor(Math.random() * 1000);

const readProduct = (): Request => ({ method: 'GET', path: `/products/${sku()}` });
const placeOrder = (): Request => ({ method: 'POST', path: '/orders', body: { sku: sku(), quantity: 1 } });
const transfer = (amount: number): Request => ({
  method: 'POST',
  path: '/transfers',
  body: { from: account(), to: account(), amount_cents: amount },
});

/** Steady everyday traffic: reads, orders and small transfers. */
function everyday(baseUrl: string): Stream[] {
  return [
    { baseUrl, concurrency: 3, pauseMs: 20, next: readProduct },
    { baseUrl, concurrency: 1, pauseMs: 50, next: placeOrder },
    { baseUrl, concurrency: 1, pauseMs: 50, next: () => transfer(100) },
  ];
}

const one = (env: Record<string, string> = {}): ServicePlan[] => [{ name: 'orders-api', env, delayMs: 0 }];

function found(ok: boolean, text: string): Verdict {
  return { ok, word: ok ? 'DETECTED' : 'not detected', text };
}

function reportsLike(o: Observed, pattern: RegExp): string[] {
  return o.reports.filter((r) => pattern.test(r));
}

/** The largest group of the first exhaustion report: "5 held at <site>", the code line or the SQL. */
function exhaustionHolders(o: Observed): string | undefined {
  const i = o.reports.findIndex((r) => / exhausted: /.test(r));
  if (i < 0) return undefined;
  const head = o.reports.slice(i + 1).find((r) => /^\s+\d+ held at /.test(r));
  return head?.trim().replace(/, the oldest for .*$/, '');
}

const exhaustionText = (o: Observed) => {
  const holders = exhaustionHolders(o);
  return holders ? `; exhaustion report: ${holders}` : '; no exhaustion report';
};

export const SCENARIOS: Scenario[] = [
  {
    name: 'healthy',
    title: 'Healthy traffic: reads, orders and transfers on a pool of 5',
    watch: 'used stays below max, nobody waits, p95 wait well under a millisecond',
    seconds: 8,
    services: () => one(),
    load: everyday,
    verdict(o) {
      const trouble = { timeouts: o.timeouts, leaks: o.leakDetections, 'releases in a transaction': o.releasedInTransaction };
      const seen = Object.entries(trouble).filter(([, n]) => (n ?? 0) > 0);
      const ok = o.instrumented && seen.length === 0;
      return {
        ok,
        word: ok ? 'clean' : o.instrumented ? 'NOT CLEAN' : 'no metrics',
        text:
          `${o.requests.describe()}; p95 wait ${seconds(o.p95WaitLast)}; ` +
          (seen.length === 0 ? 'no timeouts, leaks or releases in a transaction' : seen.map(([k, n]) => `${n} ${k}`).join(', ')),
      };
    },
  },
  {
    name: 'leak',
    title: 'Leak: POST /orders with an unknown product throws before client.release(), until the pool of 5 runs dry',
    watch:
      'leaked and oldest grow; the package logs a WARN with the stack of the code that took the connection; ' +
      'once all 5 are gone requests time out and the exhaustion report names the leaking line',
    seconds: 15,
    services: () => one(),
    load: (baseUrl) => [
      ...everyday(baseUrl),
      // Five planted bad requests, a second or so apart: each leaks one of the 5 connections, so
      // the pool is exhausted after about 5 s, and the next checkouts time out.
      {
        baseUrl,
        concurrency: 1,
        pauseMs: 1200,
        limit: 5,
        next: () => ({ method: 'POST', path: '/orders', body: { sku: 'SKU-DISCONTINUED', quantity: 1 } }),
      },
    ],
    verdict(o) {
      const reports = reportsLike(o, /leak/i);
      const n = Math.max(o.leakDetections ?? 0, o.leakedPeak ?? 0, reports.length);
      const where = o.reports.find((r) => /examples\/service/.test(r))?.trim();
      return found(
        n > 0,
        `${none(o.leakDetections)} leak detections (peak ${count(o.leakedPeak)} held, oldest ${seconds(o.oldestAgePeak)}), ` +
          `${reports.length} WARN reports${where ? `, first at ${where.replace(/^.*?\bat\s+/, '')}` : ''}` +
          exhaustionText(o)
      );
    },
  },
  {
    name: 'storm',
    title: 'Slow-query storm: 15 concurrent 0.8 s reports on a pool of 5 (connectionTimeoutMillis 1000)',
    watch: 'used = max, waiting climbs, p95 wait nears 1 s, timeouts count up, requests get 503; the exhaustion report names the SQL holding the pool',
    seconds: 12,
    services: () => one(),
    load: (baseUrl) => [
      { baseUrl, concurrency: 15, next: () => ({ method: 'GET', path: '/reports/daily-sales' }) },
      { baseUrl, concurrency: 2, pauseMs: 50, next: readProduct },
    ],
    verdict: (o) =>
      found(
        (o.timeouts ?? 0) > 0,
        `${none(o.timeouts)} checkout timeouts, up to ${count(o.waitingPeak)} waiting, p95 wait up to ${seconds(o.p95WaitPeak)}; ` +
          `${o.requests.byStatus.get('503') ?? 0} requests answered 503` +
          exhaustionText(o)
      ),
  },
  {
    name: 'churn',
    title: 'Churn: the stats pool has idleTimeoutMillis 200 and gets bursts with 700 ms gaps',
    watch: 'open drops to 0 between bursts; closed/s stays high (reason idle_timeout)',
    seconds: 12,
    services: () => one(),
    load: (baseUrl) => [
      { baseUrl, concurrency: 4, burst: { onMs: 400, offMs: 700 }, next: () => ({ method: 'GET', path: '/stats' }) },
      { baseUrl, concurrency: 1, pauseMs: 100, next: readProduct },
    ],
    verdict(o) {
      const idle = o.closedByReason.idle_timeout ?? 0;
      return found(idle > 0, `${idle} connections closed by idle_timeout, ${count(o.created)} opened`);
    },
  },
  {
    name: 'transaction',
    title: 'Transaction left open: POST /transfers returns 409 after BEGIN and releases without ROLLBACK',
    watch: 'in-tx counts releases inside a transaction; the package logs each one',
    seconds: 10,
    services: () => one(),
    load: (baseUrl) => [
      // One transfer in five is far larger than any balance.
      { baseUrl, concurrency: 2, pauseMs: 100, next: () => transfer(pick([100, 100, 100, 100, 1_000_000])) },
      { baseUrl, concurrency: 2, pauseMs: 50, next: readProduct },
    ],
    verdict(o) {
      const reports = reportsLike(o, /transaction/i).length;
      const n = Math.max(o.releasedInTransaction ?? 0, reports);
      return found(n > 0, `${none(o.releasedInTransaction)} releases inside an open transaction, ${reports} reports logged`);
    },
  },
  {
    name: 'fleet',
    title: 'Fleet: three copies of the service whose pools together exceed the server limit',
    watch: 'server connections reach the usable limit; new connections are refused with 53300',
    seconds: 15,
    services(usable, seconds) {
      // Together the pools may open a few more connections than the server lets this role have.
      const max = String(Math.ceil((usable + 4) / 3));
      const env = { PG_POOL_MAX: max, PG_CONNECTION_TIMEOUT_MS: '3000' };
      // One more process every 2.5 s, sooner in a short run so that all three get to run.
      const step = Math.min(2500, (seconds * 1000) / 5);
      return [0, 1, 2].map((i) => ({ name: `orders-api-${i + 1}`, env, delayMs: i * step }));
    },
    // More concurrent slow requests than the pool has connections, so every pool fills up. A
    // refused request fails at once; the pause keeps the retry loop from spinning.
    load: (baseUrl, plan) => [
      {
        baseUrl,
        concurrency: Number(plan.env.PG_POOL_MAX) + 3,
        pauseMs: 100,
        next: () => ({ method: 'GET', path: '/reports/daily-sales' }),
      },
    ],
    verdict(o) {
      const refused = o.errorsByType['53300'] ?? 0;
      return found(
        refused > 0,
        `${refused} connections refused with 53300; server peaked at ${count(o.serverPeak)} of ${count(o.usable)} usable; ` +
          `pools' max adds up to ${count(o.poolMaxSum)}`
      );
    },
  },
];
