// The worker of bench/neon.ts: one configuration, one driver, one workload, in a fresh process.
// It runs transpiled (bench/transpile.ts), as npm run bench's workers do.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { OPS } from './workloads';
import { collectingReader } from './configurations';

export const CONFIGS = ['bare', 'metrics-floor', 'ours-metrics', 'ours-all'] as const;
export type Config = (typeof CONFIGS)[number];
// pg.Pool rows are the reference: the same workloads as the Neon Pool's, in the same conditions.
// The Neon Pool runs twice: as applications run it (its writes coalesced: each message waits for
// a setTimeout(0), about 1 ms, so its worker idles between messages) and with
// neonConfig.coalesceWrites off, where its worker is busy, as pg.Pool's is in npm run bench.
export const CASES = [
  { driver: 'pg.Pool', workload: 'query', concurrency: 32 },
  { driver: 'pg.Pool', workload: 'checkout', concurrency: 32 },
  { driver: 'pg.Pool, relayed', workload: 'query', concurrency: 32 },
  { driver: 'pg.Pool, relayed', workload: 'checkout', concurrency: 32 },
  { driver: 'neon Pool', workload: 'query', concurrency: 32 },
  { driver: 'neon Pool', workload: 'checkout', concurrency: 32 },
  { driver: 'neon Pool, uncoalesced', workload: 'query', concurrency: 32 },
  { driver: 'neon Pool, uncoalesced', workload: 'checkout', concurrency: 32 },
  { driver: 'neon()', workload: 'http', concurrency: 8 },
] as const;
export type Case = (typeof CASES)[number];

export interface Job {
  /** The repository, whose dist/ the ours-* configurations load. */
  root: string;
  config: Config;
  case: Case;
  url: string;
  /** The same server through the relay. */
  relayedUrl: string;
  wsProxy: string;
  fetchEndpoint: string;
  /** Warm-up: until this many queries ran, or warmupMs passed. */
  warmupQueries: number;
  warmupMs: number;
  durationMs: number;
}
export interface Result {
  queries: number;
  ms: number;
  cpuUs: number;
}

type Runner = () => Promise<number>;

async function setUp(root: string, config: Config, driver: Case['driver']): Promise<void> {
  // A pg loaded before the instrumentation is never patched: its rows would measure bare pg twice.
  const early = Object.keys(require.cache).filter((f) => /[\\/]node_modules[\\/](pg|pg-pool|@neondatabase[\\/]serverless)[\\/]/.test(f));
  if (early.length > 0) throw new Error(`loaded before the instrumentation: ${early[0]}`);
  if (config === 'bare') return;
  if (config === 'metrics-floor') return setUpMetricsFloor(driver);
  const { PgPoolInstrumentation } = require(join(root, 'dist', 'index.js')) as typeof import('../src/index');
  const { registerInstrumentations } = await import('@opentelemetry/instrumentation');
  const { BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const instrumentation = new PgPoolInstrumentation();
  const { meterProvider } = collectingReader(METRICS, instrumentation.metricProducer());
  const tracerProvider =
    config === 'ours-all' ? new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor({ export: (_s, done) => done(OK), shutdown: async () => {} })] }) : undefined;
  registerInstrumentations({ instrumentations: [instrumentation], meterProvider, tracerProvider });
}

/**
 * bench/metrics-floor.ts on the driver's own classes: the Neon Pool and Client are node-postgres'
 * classes from the copy bundled in @neondatabase/serverless, with the same connect, _release and
 * query to wrap. The reference the package's metrics are held to on each driver, idle worker and all.
 */
function setUpMetricsFloor(driver: Case['driver']): void {
  const { installMetricsFloor } = require('./metrics-floor') as typeof import('./metrics-floor');
  const classes = driver.startsWith('neon') ? (require('@neondatabase/serverless') as typeof import('pg')) : (require('pg') as typeof import('pg'));
  collectingReader(METRICS, installMetricsFloor(classes).producer);
}

// Collection is measured, serialization is not (as in bench/configurations.ts).
const METRICS = { metricIntervalMs: 1000 };
const OK = { code: 0 };

function runner(job: Job): { run: Runner; end: () => Promise<void> } {
  if (!job.case.driver.startsWith('neon')) {
    const { Pool } = require('pg') as typeof import('pg');
    const url = job.case.driver === 'pg.Pool' ? job.url : job.relayedUrl;
    return poolRunner(new Pool({ connectionString: url, max: 10 }), job.case.workload);
  }
  const neon = require('@neondatabase/serverless') as typeof import('@neondatabase/serverless');
  neon.neonConfig.webSocketConstructor = require('ws');
  neon.neonConfig.wsProxy = job.wsProxy;
  neon.neonConfig.useSecureWebSocket = false;
  neon.neonConfig.pipelineConnect = false;
  neon.neonConfig.fetchEndpoint = job.fetchEndpoint;
  neon.neonConfig.coalesceWrites = job.case.driver !== 'neon Pool, uncoalesced';
  if (job.case.driver !== 'neon()') return poolRunner(new neon.Pool({ connectionString: job.url, max: 10 }) as never, job.case.workload);
  const sql = neon.neon(job.url);
  return { run: async () => (await sql`SELECT 1`, 1), end: async () => {} };
}

function poolRunner(pool: import('pg').Pool, workload: string): { run: Runner; end: () => Promise<void> } {
  // The same requests as npm run bench's workloads of these names.
  const op = OPS[workload === 'query' ? 'query' : 'checkout'];
  return { run: () => op(pool), end: () => pool.end() };
}

async function worker(job: Job): Promise<Result> {
  await setUp(job.root, job.config, job.case.driver);
  const { run, end } = runner(job);
  let measuring = false;
  let stop = false;
  let queries = 0;
  let warmed: (() => void) | undefined;
  const loop = async () => {
    while (!stop) {
      const n = await run();
      queries += n;
      if (!measuring && queries >= job.warmupQueries) warmed?.();
    }
  };
  const loops = Array.from({ length: job.case.concurrency }, loop);
  // A warm-up by count, not time: a Neon Pool's worker runs a fifth of pg.Pool's queries a second,
  // and V8 is still optimizing its functions (on its own threads, in the process's CPU time) long
  // after a warm-up that pg.Pool's worker is done with.
  await new Promise<void>((r) => {
    const timer = setTimeout(r, job.warmupMs);
    warmed = () => {
      clearTimeout(timer);
      r();
    };
  });
  warmed = undefined;
  queries = 0;
  measuring = true;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, job.durationMs));
  measuring = false;
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  stop = true;
  await Promise.all(loops);
  await end();
  return { queries, ms, cpuUs: cpu.user + cpu.system };
}

if (require.main === module) {
  worker(JSON.parse(process.argv[2]!) as Job).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + '\n');
      process.exit(0);
    },
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    }
  );
}
