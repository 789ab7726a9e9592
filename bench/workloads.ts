// What a worker does against the pool: four throughput workloads, a heap measurement and a soak.
import type { Pool } from 'pg';

export const WORKLOADS = ['query', 'checkout', 'txn', 'storm'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

/** Callers running requests at once; the pool has 10 connections for every workload. */
export const CONCURRENCY: Record<WorkloadName, number> = { query: 32, checkout: 32, txn: 32, storm: 2000 };

/** The storm's slow-wait setting: low enough that waits cross it and the exhaustion report runs. */
export const STORM_SLOW_WAIT_MS = 100;

/** Worker environment per workload (the package reads its settings when the worker sets it up). */
export const WORKLOAD_ENV: Partial<Record<WorkloadName, Record<string, string>>> = {
  storm: { PG_POOL_OTEL_SLOW_WAIT_MS: String(STORM_SLOW_WAIT_MS) },
};

export const WORKLOAD_DESCRIPTIONS: Record<WorkloadName, string> = {
  query: "pool.query('SELECT 1'), concurrency 32, pool max 10",
  checkout: 'pool.connect(), 3 x SELECT 1, release(); concurrency 32, pool max 10',
  txn: 'pool.connect(), BEGIN, UPDATE one random row of 10k, SELECT it, COMMIT, release(); concurrency 32, pool max 10',
  storm:
    `a saturated pool: pool.query('SELECT 1'), concurrency 2,000, pool max 10, PG_POOL_OTEL_SLOW_WAIT_MS=${STORM_SLOW_WAIT_MS} ` +
    '(most requests queue past it, so the slow-wait report runs)',
};

/** Rows in the table the transaction workload updates; run.ts creates it. */
export const ACCOUNT_ROWS = 10_000;
export const SETUP_SQL = [
  'DROP TABLE IF EXISTS bench_accounts',
  'CREATE TABLE bench_accounts (id integer PRIMARY KEY, balance bigint NOT NULL DEFAULT 0)',
  `INSERT INTO bench_accounts (id) SELECT g FROM generate_series(1, ${ACCOUNT_ROWS}) AS g`,
  'VACUUM ANALYZE bench_accounts',
];

/** One request; resolves to the number of queries it ran. */
type Op = (pool: Pool) => Promise<number>;

/** Exported for bench/neon.ts, which runs the same `query` and `checkout` requests on other pools. */
export const OPS: Record<WorkloadName, Op> = {
  async query(pool) {
    await pool.query('SELECT 1');
    return 1;
  },
  async storm(pool) {
    await pool.query('SELECT 1');
    return 1;
  },
  async checkout(pool) {
    const client = await pool.connect();
    try {
      await client.query('SELECT 1');
      await client.query('SELECT 1');
      await client.query('SELECT 1');
    } finally {
      client.release();
    }
    return 3;
  },
  async txn(pool) {
    const client = await pool.connect();
    try {
      const id = 1 + Math.floor(Math.random() * ACCOUNT_ROWS);
      await client.query('BEGIN');
      await client.query('UPDATE bench_accounts SET balance = balance + 1 WHERE id = $1', [id]);
      await client.query('SELECT balance FROM bench_accounts WHERE id = $1', [id]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
    return 4;
  },
};

export interface ThroughputResult {
  kind: 'throughput';
  /** queries in the measured window */
  queries: number;
  /** queries in the whole run, warm-up and wind-down included (what the spans are made of) */
  allQueries: number;
  requests: number;
  wallMs: number;
  /** user + system CPU of the worker process during the measured window */
  cpuMs: number;
  /** the system (kernel) part of cpuMs: socket reads and writes, mostly */
  systemMs: number;
  p50Ms: number;
  p99Ms: number;
  /** the worker's peak resident set size over the whole run (process.resourceUsage().maxRSS) */
  peakRssBytes: number;
  /** exhaustion reports the package printed over the whole run (lines with "exhausted:" on stderr) */
  reports: number;
}

/** Counts the package's exhaustion reports as they are written to stderr; call before setting up. */
export function countReports(): () => number {
  let n = 0;
  const write = process.stderr.write.bind(process.stderr) as (chunk: unknown, ...rest: unknown[]) => boolean;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (typeof chunk === 'string' && chunk.includes(' exhausted: ')) n++;
    return write(chunk, ...rest);
  }) as typeof process.stderr.write;
  return () => n;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs `concurrency` request loops; the first `warmupMs` are not counted. */
export async function runThroughput(
  pool: Pool,
  workload: WorkloadName,
  concurrency: number,
  warmupMs: number,
  durationMs: number
): Promise<ThroughputResult> {
  const op = OPS[workload];
  let phase: 'warmup' | 'measure' | 'stop' = 'warmup';
  let queries = 0;
  let allQueries = 0;
  let requests = 0;
  let latencies = new Float64Array(1 << 16);
  const loop = async () => {
    while (phase !== 'stop') {
      const t0 = performance.now();
      const n = await op(pool);
      allQueries += n;
      if (phase !== 'measure') continue;
      if (requests === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[requests++] = performance.now() - t0;
      queries += n;
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  await sleep(warmupMs);
  phase = 'measure';
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(durationMs);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const counted = { queries, requests };
  phase = 'stop';
  await Promise.all(loops);
  const sorted = latencies.slice(0, counted.requests).sort();
  return {
    kind: 'throughput',
    queries: counted.queries,
    allQueries,
    requests: counted.requests,
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    systemMs: cpu.system / 1000,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    reports: 0,
  };
}

// ---------------------------------------------------------------------------------------------
// Heap

const gc = (globalThis as { gc?: () => void }).gc;

/** heapUsed after full collections; needs --expose-gc. */
export async function settledHeap(): Promise<number> {
  if (!gc) throw new Error('run the worker with --expose-gc');
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface HeapResult {
  kind: 'heap';
  clients: number;
  /** heap per open idle connection: `clients` idle connections vs none */
  perConnectionBytes: number;
  /** heap per checkout: `clients` checked out vs the same connections idle (median of repeats) */
  perCheckoutBytes: number;
}

export async function runHeap(
  makePool: (max: number) => Pool,
  clients: number,
  repeats: number,
  flush: () => Promise<void>
): Promise<HeapResult> {
  const reading = async () => {
    await flush();
    return settledHeap();
  };
  const checkoutAll = async (pool: Pool) => {
    const held = [];
    for (let i = 0; i < clients; i++) held.push(await pool.connect());
    return held;
  };
  // Warm up every code path once (lazy requires, parsers, instruments) in a throw-away pool.
  const warm = makePool(clients);
  for (const c of await checkoutAll(warm)) {
    await c.query('SELECT 1');
    c.release();
  }
  await warm.end();
  // pool.end() resolves before the sockets have closed; let them go before the first reading.
  await sleep(300);

  const pool = makePool(clients);
  const empty = await reading();
  for (const c of await checkoutAll(pool)) {
    await c.query('SELECT 1');
    c.release();
  }
  const idle = await reading();
  const perCheckout: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const before = await reading();
    const held = await checkoutAll(pool);
    const during = await reading();
    perCheckout.push((during - before) / clients);
    for (const c of held) c.release();
  }
  await pool.end();
  return {
    kind: 'heap',
    clients,
    perConnectionBytes: (idle - empty) / clients,
    perCheckoutBytes: median(perCheckout),
  };
}

// ---------------------------------------------------------------------------------------------
// Soak

export interface SoakResult {
  kind: 'soak';
  queries: number;
  /** queries including the warm-up (what the spans are made of) */
  allQueries: number;
  wallMs: number;
  heapBeforeBytes: number;
  heapAfterBytes: number;
  /** settled heap every `queries / 10` queries */
  heapSamplesBytes: number[];
}

export async function runSoak(
  pool: Pool,
  total: number,
  concurrency: number,
  flush: () => Promise<void>
): Promise<SoakResult> {
  const reading = async () => {
    await flush();
    return settledHeap();
  };
  // Warm-up: fill the pool and let the JIT and the SDK settle before the first reading.
  const WARMUP_PER_LOOP = 300;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = 0; i < WARMUP_PER_LOOP; i++) await pool.query('SELECT 1');
  }));
  const heapBeforeBytes = await reading();
  const samples: number[] = [];
  const step = Math.max(1, Math.floor(total / 10));
  let started = 0;
  let done = 0;
  let sampling: Promise<void> = Promise.resolve();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < total) {
        started++;
        await pool.query('SELECT 1');
        done++;
        if (done % step === 0) {
          await sampling;
          sampling = reading().then((h) => void samples.push(h));
          await sampling;
        }
      }
    })
  );
  const wallMs = performance.now() - t0;
  await sampling;
  const heapAfterBytes = await reading();
  return {
    kind: 'soak',
    queries: done,
    allQueries: done + concurrency * WARMUP_PER_LOOP,
    wallMs,
    heapBeforeBytes,
    heapAfterBytes,
    heapSamplesBytes: samples,
  };
}
