// `npx tsx bench/neon.ts`: what the package costs per query on @neondatabase/serverless, next to
// pg.Pool, by the method of `npm run bench` in short: each (driver, workload, configuration) runs
// in a fresh worker process (bench/neon-worker.ts, transpiled as npm run bench's workers are),
// interleaved over rounds with the order of configurations rotated, and each ratio is the median
// over rounds of (throughput / bare's throughput in the same round); the CPU-based ratio (bare's
// worker CPU per query / this one's) is steadier on a shared machine, and "+µs/query CPU" is the
// package's own cost per query in the worker. The Neon Pool reaches the embedded PostgreSQL
// through the test suite's WebSocket-to-TCP bridge, neon() through its HTTP stand-in, both in this
// (parent) process. With its writes coalesced (Neon's default) each message waits for a
// setTimeout(0), which bounds the Neon Pool's throughput and leaves its worker idle between
// messages; "neon Pool, uncoalesced" turns that off. "pg.Pool, relayed" puts pg.Pool behind a
// TCP relay in this process that hands each chunk on a turn later, as the bridge does. Each worker
// warms up for 25,000 queries (at most 8 s), about what npm run bench's pg.Pool workers run in
// their 1 s: a Neon Pool runs a fifth as many a second, and after a 0.5 s warm-up V8 was still
// optimizing (on its own threads, counted in the worker's CPU), the more so the more code runs.
//
// --pin runs the workers on one CPU, this process (bridge, relay) and PostgreSQL on another
// (bench/pinning.ts).
//
//   npx tsx bench/neon.ts [--rounds N] [--duration SECONDS] [--only 'neon Pool checkout'] [--configs bare,ours-metrics] [--pin]   (npm run build first)
//   NEON_BENCH_PROFILE=DIR writes a --cpu-prof profile of every worker to DIR (NEON_BENCH_PROFILE_INTERVAL: µs between samples);
//   NEON_BENCH_NODE_FLAGS='--single-threaded-gc ...' adds node flags to every worker
import { spawn } from 'node:child_process';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { startPostgres } from '../tools/embedded-postgres';
import { startNeonProxy } from '../test/support/neon-proxy';
import { pinning, type Pinning } from './pinning';
import { transpileBench } from './transpile';
import { CASES, CONFIGS, type Case, type Config, type Job, type Result } from './neon-worker';

const ROOT = resolve(__dirname, '..');
const OUT = join(ROOT, 'bench', '.out-neon');
// About what a pg.Pool worker of npm run bench runs in its 1 s warm-up; at most 8 s (neon() over HTTP runs a few hundred a second).
const WARMUP_QUERIES = 25_000;
const WARMUP_MAX_MS = 8_000;

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
    const prof = process.env.NEON_BENCH_PROFILE
      ? ['--cpu-prof', '--cpu-prof-dir', process.env.NEON_BENCH_PROFILE, '--cpu-prof-interval', process.env.NEON_BENCH_PROFILE_INTERVAL ?? '1000']
      : [];
    const flags = (process.env.NEON_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
    const [command, argv] = pinned.worker([process.execPath, ...prof, ...flags, join(OUT, 'neon-worker.js'), JSON.stringify(job)]);
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
  transpileBench(['neon-worker', 'workloads', 'configurations', 'metrics-floor'], OUT);
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
        // Each round starts with the next configuration, as npm run bench does.
        for (const config of configs.map((_, i) => configs[(i + round) % configs.length]!)) {
          const r = await runWorker({ root: ROOT, config, case: c, url: server.url, relayedUrl, wsProxy: proxy.wsProxyUrl, fetchEndpoint: proxy.fetchEndpoint, warmupQueries: WARMUP_QUERIES, warmupMs: WARMUP_MAX_MS, durationMs }, pinned);
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

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
