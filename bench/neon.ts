// `npx tsx bench/neon.ts`: what the package costs per query on @neondatabase/serverless, next to
// pg.Pool, by the method of `npm run bench` in short: each (driver, workload, configuration) runs
// in a fresh worker process, interleaved over rounds, and each ratio is the median over rounds of
// (throughput / bare's throughput in the same round); the CPU-based ratio (bare's worker CPU per
// query / this one's) is steadier on a shared machine, and "+µs/query CPU" is the package's own
// cost per query in the worker. The Neon Pool reaches the embedded PostgreSQL through the test
// suite's WebSocket-to-TCP bridge, neon() through its HTTP stand-in, both in this (parent)
// process: the bridge bounds their throughput, and their workers idle between messages.
// "pg.Pool, relayed" puts pg.Pool in the same conditions (a TCP relay in this process that hands
// each chunk on a turn later, as the bridge does), so that the Neon rows have a like reference.
//
// --pin runs the workers on one CPU, this process (bridge, relay) and PostgreSQL on another
// (bench/pinning.ts).
//
//   npx tsx bench/neon.ts [--rounds N] [--duration SECONDS] [--only 'neon Pool checkout'] [--configs bare,ours-metrics] [--pin]   (npm run build first)
//   NEON_BENCH_PROFILE=DIR writes a --cpu-prof profile of every worker to DIR
import { spawn } from 'node:child_process';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { OPS } from './workloads';
import { pinning, type Pinning } from './pinning';
import { collectingReader } from './configurations';

const ROOT = resolve(__dirname, '..');
const CONFIGS = ['bare', 'metrics-floor', 'ours-metrics', 'ours-all'] as const;
type Config = (typeof CONFIGS)[number];
// pg.Pool rows are the reference: the same workloads as the Neon Pool's, in the same conditions.
const CASES = [
  { driver: 'pg.Pool', workload: 'query', concurrency: 32 },
  { driver: 'pg.Pool', workload: 'checkout', concurrency: 32 },
  { driver: 'pg.Pool, relayed', workload: 'query', concurrency: 32 },
  { driver: 'pg.Pool, relayed', workload: 'checkout', concurrency: 32 },
  { driver: 'neon Pool', workload: 'query', concurrency: 32 },
  { driver: 'neon Pool', workload: 'checkout', concurrency: 32 },
  { driver: 'neon()', workload: 'http', concurrency: 8 },
] as const;
type Case = (typeof CASES)[number];

interface Job {
  config: Config;
  case: Case;
  url: string;
  /** The same server through the relay. */
  relayedUrl: string;
  wsProxy: string;
  fetchEndpoint: string;
  warmupMs: number;
  durationMs: number;
}
interface Result {
  queries: number;
  ms: number;
  cpuUs: number;
}

// ---------------------------------------------------------------------------------------------
// Worker: one configuration, one driver, one workload.

type Runner = () => Promise<number>;

async function setUp(config: Config, driver: Case['driver']): Promise<void> {
  // A pg loaded before the instrumentation is never patched: its rows would measure bare pg twice.
  const early = Object.keys(require.cache).filter((f) => /[\\/]node_modules[\\/](pg|pg-pool|@neondatabase[\\/]serverless)[\\/]/.test(f));
  if (early.length > 0) throw new Error(`loaded before the instrumentation: ${early[0]}`);
  if (config === 'bare') return;
  if (config === 'metrics-floor') return setUpMetricsFloor(driver);
  const { PgPoolInstrumentation } = require(join(ROOT, 'dist', 'index.js')) as typeof import('../src/index');
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
  if (job.case.driver !== 'neon Pool' && job.case.driver !== 'neon()') {
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
  if (job.case.driver === 'neon Pool') return poolRunner(new neon.Pool({ connectionString: job.url, max: 10 }) as never, job.case.workload);
  const sql = neon.neon(job.url);
  return { run: async () => (await sql`SELECT 1`, 1), end: async () => {} };
}

function poolRunner(pool: import('pg').Pool, workload: string): { run: Runner; end: () => Promise<void> } {
  // The same requests as npm run bench's workloads of these names.
  const op = OPS[workload === 'query' ? 'query' : 'checkout'];
  return { run: () => op(pool), end: () => pool.end() };
}

async function worker(job: Job): Promise<Result> {
  // tsx turns source maps on; the bench's workers run compiled JavaScript without them.
  process.setSourceMapsEnabled(false);
  await setUp(job.config, job.case.driver);
  const { run, end } = runner(job);
  let measuring = false;
  let stop = false;
  let queries = 0;
  const loop = async () => {
    while (!stop) {
      const n = await run();
      if (measuring) queries += n;
    }
  };
  const loops = Array.from({ length: job.case.concurrency }, loop);
  await new Promise((r) => setTimeout(r, job.warmupMs));
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

// ---------------------------------------------------------------------------------------------
// Parent: the server, the bridge, the relay, the rounds, the table.

/** A TCP relay to `port` that writes each chunk on the next turn of the event loop, as the bridge does. */
async function startRelay(port: number): Promise<{ port: number; close: () => void }> {
  const sockets = new Set<Socket>();
  const hop = (from: Socket, to: Socket) => from.on('data', (chunk: Buffer) => setImmediate(() => to.write(chunk)));
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => (sockets.delete(s), client.destroy(), upstream.destroy()));
    }
    hop(client, upstream);
    hop(upstream, client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

function runWorker(job: Job, pinned: Pinning): Promise<Result> {
  return new Promise((resolvePromise, reject) => {
    // Advice about the pools' options is for applications, not for this measurement.
    const env = { ...process.env, PG_POOL_OTEL_CONFIG_ADVICE: 'false' };
    const prof = process.env.NEON_BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.NEON_BENCH_PROFILE] : [];
    const [command, argv] = pinned.worker([process.execPath, ...prof, '--import', 'tsx', __filename, '--worker', JSON.stringify(job)]);
    const child = spawn(command, argv, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolvePromise(JSON.parse(out.trim().split('\n').pop()!) as Result) : reject(new Error(`worker exited ${code}: ${out}`))));
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const cpuPerQuery = (r: Result) => r.cpuUs / r.queries;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string, dflt: number) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const rounds = flag('rounds', 3);
  const durationMs = flag('duration', 1.5) * 1000;
  const configsAt = args.indexOf('--configs');
  const configs = configsAt >= 0 ? CONFIGS.filter((c) => args[configsAt + 1]!.split(',').includes(c)) : CONFIGS;
  if (!configs.includes('bare')) throw new Error('--configs must include bare: every ratio is to it');
  const onlyAt = args.indexOf('--only');
  const only = onlyAt >= 0 ? args[onlyAt + 1] : undefined;
  // Loaded here, not at the top: the bridge loads pg, which a worker must load after its instrumentation.
  const { startPostgres } = require('../tools/embedded-postgres') as typeof import('../tools/embedded-postgres');
  const { startNeonProxy } = require('../test/support/neon-proxy') as typeof import('../test/support/neon-proxy');
  const server = await startPostgres({ maxConnections: 100 });
  const proxy = await startNeonProxy(server.port);
  const relay = await startRelay(server.port);
  const relayedUrl = server.url.replace(`:${server.port}/`, `:${relay.port}/`);
  const pinned = pinning(args.includes('--pin'));
  pinned.toServerCpu(server.pid);
  pinned.toServerCpu(process.pid); // the bridge and the relay
  process.stderr.write(`CPUs: ${pinned.description}\n`);
  const results = new Map<string, Result[]>();
  const key = (c: Case, config: Config) => `${c.driver}\u0000${c.workload}\u0000${config}`;
  try {
    for (let round = 0; round < rounds; round++) {
      for (const c of CASES.filter((x) => !only || `${x.driver} ${x.workload}`.includes(only))) {
        for (const config of configs) {
          const r = await runWorker({ config, case: c, url: server.url, relayedUrl, wsProxy: proxy.wsProxyUrl, fetchEndpoint: proxy.fetchEndpoint, warmupMs: 500, durationMs }, pinned);
          (results.get(key(c, config)) ?? results.set(key(c, config), []).get(key(c, config))!).push(r);
          process.stderr.write('.');
        }
      }
    }
  } finally {
    relay.close();
    await proxy.close();
    await server.stop();
  }
  process.stderr.write('\n');
  const rows = [['driver', 'workload', 'configuration', 'queries/s (median)', 'of bare (wall)', 'of bare (CPU-based)', 'of metrics floor (wall)', 'of metrics floor (CPU-based)', 'CPU µs/query', '+µs/query CPU']];
  for (const c of CASES) {
    const bare = results.get(key(c, 'bare'));
    if (!bare) continue;
    const floor = results.get(key(c, 'metrics-floor'));
    for (const config of configs) {
      const rs = results.get(key(c, config))!;
      const qps = rs.map((r) => (r.queries / r.ms) * 1000);
      const us = rs.map(cpuPerQuery);
      // Ratios per round, against the reference's run in the same round.
      const wallOf = (ref: Result[]) => pct(median(rs.map((r, i) => r.queries / r.ms / (ref[i]!.queries / ref[i]!.ms))));
      const cpuOf = (ref: Result[]) => pct(median(us.map((u, i) => cpuPerQuery(ref[i]!) / u)));
      // The package's own cost per query in the worker, whatever else bounds the throughput.
      const added = us.map((u, i) => u - cpuPerQuery(bare[i]!));
      const vsBare = config !== 'bare';
      const vsFloor = config === 'ours-metrics' && floor !== undefined;
      rows.push([
        c.driver,
        c.workload,
        config,
        median(qps).toFixed(0),
        vsBare ? wallOf(bare) : '',
        vsBare ? cpuOf(bare) : '',
        vsFloor ? wallOf(floor) : '',
        vsFloor ? cpuOf(floor) : '',
        median(us).toFixed(1),
        vsBare ? `+${median(added).toFixed(1)}` : '',
      ]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((v, i) => v.padEnd(widths[i]!)).join('  '));
  console.log(`\n${rounds} rounds x ${durationMs / 1000} s per row; targets of npm run bench: ours-metrics >= 97% of bare and >= 97% of the metrics floor.`);
}

if (process.argv[2] === '--worker') {
  worker(JSON.parse(process.argv[3]!) as Job).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + '\n');
      process.exit(0);
    },
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    }
  );
} else {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
