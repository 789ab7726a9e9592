// `npm run bench`: starts one embedded PostgreSQL and one loopback OTLP/HTTP receiver, runs every
// configuration x workload in a fresh worker process, interleaved over several rounds, and
// prints/writes the medians, with the spans each run made against the spans the receiver decoded.
//
//   npm run bench                      full run (5 rounds x 3 s per configuration and workload)
//   npm run bench -- --quick           about three minutes: 2 rounds x 1.5 s
//   npm run bench -- --soak            a million queries on bare and ours-all, heap before/after
//   npm run bench -- --profile ours-all [--workload query]   one worker under --cpu-prof (any configuration)
//   npm run bench -- --cold            start-up CPU/memory and install footprint only (fresh apps from the
//                                      npm registry); a complete run does this too, unless --no-cold
// Other flags: --rounds N, --duration SECONDS, --configs a,b, --workloads a,b,
// --soak-queries N, --startup-runs N, --pin (the worker on one CPU, PostgreSQL and the receiver on another: for A/B runs of metrics-only
// configurations; see bench/pinning.ts), --write-docs (also for a partial or quick run), --no-docs,
// --render (only rewrite docs/benchmarks.md from bench/results/*.json and bench/findings.md),
// --env NAME=VALUE[,NAME=VALUE] (extra environment for the workers, e.g. PG_POOL_OTEL_CAPTURE_STACKS=false;
// such a run never writes the docs unless --write-docs is given).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, totalmem, release, type } from 'node:os';
import { join, resolve } from 'node:path';
import { startPostgres, type PostgresServer } from '../tools/embedded-postgres';
import { CONFIGURATIONS, distEntry, type ConfigName } from './configurations';
import { CONCURRENCY, SETUP_SQL, WORKLOADS, type WorkloadName } from './workloads';
import type { Job, WorkerResult } from './worker';
import type { ReceiverStats } from './receiver';
import { consoleReport, markdownReport, type Environment, type MainResults, type ReceivedSpans, type RunRecord, type SoakResults } from './report';
import { formatProfile, summarizeProfile } from './profile';
import { installApps, measureFootprint, measureStartup, removeApps } from './cold';
import { pinning, type Pinning } from './pinning';
import { transpileBench } from './transpile';
import type { ColdResults } from './report';

const ROOT = resolve(__dirname, '..');
const OUT = join(ROOT, 'bench', '.out');
const RESULTS = join(ROOT, 'bench', 'results');
const DOC = join(ROOT, 'docs', 'benchmarks.md');

// ---------------------------------------------------------------------------------------------
// Arguments

interface Options {
  quick: boolean;
  soak: boolean;
  profile: ConfigName | undefined;
  rounds: number;
  durationMs: number;
  warmupMs: number;
  configs: ConfigName[];
  workloads: WorkloadName[];
  soakQueries: number;
  docs: 'auto' | 'always' | 'never';
  env: Record<string, string>;
  render: boolean;
  cold: 'only' | 'with-complete' | 'never';
  startupRuns: number;
  /** --pin: the worker on one CPU, the server and the receiver on another (bench/pinning.ts) */
  pin: boolean;
}

function parseArgs(argv: string[]): Options {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) flags.set(a.slice(2), argv[++i]!);
    else flags.set(a.slice(2), true);
  }
  const known = ['pin', 'quick', 'soak', 'profile', 'workload', 'rounds', 'duration', 'configs', 'workloads', 'soak-queries', 'write-docs', 'no-docs', 'env', 'render', 'cold', 'no-cold', 'startup-runs'];
  for (const k of flags.keys()) if (!known.includes(k)) throw new Error(`unknown flag --${k} (known: ${known.join(', ')})`);
  const list = <T extends string>(name: string, all: readonly T[]): T[] => {
    const v = flags.get(name);
    if (typeof v !== 'string') return [...all];
    const picked = v.split(',').map((s) => s.trim()) as T[];
    for (const p of picked) if (!all.includes(p)) throw new Error(`--${name}: ${p} is not one of ${all.join(', ')}`);
    return picked;
  };
  const num = (name: string, dflt: number) => {
    const v = flags.get(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} needs a positive number`);
    return n;
  };
  const quick = flags.has('quick');
  const profile = flags.get('profile');
  if (profile !== undefined && (profile === true || !(CONFIGURATIONS as readonly string[]).includes(profile))) {
    throw new Error(`--profile needs one of ${CONFIGURATIONS.join(', ')}`);
  }
  return {
    quick,
    soak: flags.has('soak'),
    profile: profile as ConfigName | undefined,
    rounds: num('rounds', quick ? 2 : 5),
    durationMs: num('duration', quick ? 1.5 : profile ? 10 : 3) * 1000,
    warmupMs: quick ? 500 : 1000,
    configs: list('configs', CONFIGURATIONS),
    workloads: profile ? list('workload', WORKLOADS).slice(0, 1) : list('workloads', WORKLOADS),
    soakQueries: num('soak-queries', 1_000_000),
    docs: flags.has('no-docs') ? 'never' : flags.has('write-docs') ? 'always' : 'auto',
    env: parseEnv(flags.get('env')),
    render: flags.has('render'),
    cold: flags.has('cold') ? 'only' : flags.has('no-cold') ? 'never' : 'with-complete',
    startupRuns: num('startup-runs', quick ? 5 : 15),
    pin: flags.has('pin'),
  };
}

function parseEnv(v: string | true | undefined): Record<string, string> {
  if (v === undefined) return {};
  if (v === true) throw new Error('--env needs NAME=VALUE[,NAME=VALUE]');
  const out: Record<string, string> = {};
  for (const pair of v.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--env: ${pair} is not NAME=VALUE`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Worker processes

function transpileWorker(): string {
  transpileBench(['worker', 'workloads', 'configurations', 'floor', 'metrics-floor', 'receiver'], OUT);
  return join(OUT, 'worker.js');
}

let current: ChildProcess | undefined;
let pinned: Pinning = pinning(false);
let workerEnv: NodeJS.ProcessEnv = process.env;

function runWorker(script: string, job: Job, nodeFlags: string[]): Promise<WorkerResult> {
  return new Promise((resolvePromise, reject) => {
    const [command, args] = pinned.worker([process.execPath, '--expose-gc', ...nodeFlags, script, JSON.stringify(job)]);
    const child = spawn(command, args, {
      cwd: ROOT,
      env: workerEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    current = child;
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d));
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    const limitMs = job.task === 'soak' ? 30 * 60_000 : job.warmupMs + job.durationMs + 120_000;
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      current = undefined;
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line) resolvePromise(JSON.parse(line.slice('RESULT '.length)) as WorkerResult);
      else reject(new Error(`worker ${job.config}/${job.task} failed (${signal ?? code}):\n${stderr}${stdout}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The OTLP receiver
//
// A process of its own, at the default priority: its CPU is not the worker's, so it never shows in
// the CPU-based ratios, and it is reported per span (receiverCpuMs). It does compete with the
// worker and PostgreSQL for the two cores, as a collector on the same host would, and by the same
// amount per span for every span configuration; the wall-clock ratios include that.

interface Receiver {
  url: string;
  pid: number | undefined;
  stats(): Promise<ReceiverStats>;
  stop(): void;
}

function startReceiver(script: string): Promise<Receiver> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [script], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`OTLP receiver exited (${code}) before listening`)));
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      const port = /LISTENING (\d+)/.exec(out)?.[1];
      if (!port) return;
      child.removeAllListeners('exit');
      const url = `http://127.0.0.1:${port}`;
      resolvePromise({
        url,
        pid: child.pid,
        async stats() {
          const res = await fetch(`${url}/stats`);
          return (await res.json()) as ReceiverStats;
        },
        stop() {
          child.stdin!.end();
          child.kill();
        },
      });
    });
  });
}

let receiver: Receiver | undefined;
let jobs = 0;

/** Runs one job in a worker and adds what the receiver decoded of its spans. */
async function runJob(script: string, job: Omit<Job, 'id' | 'receiverUrl'>, nodeFlags: string[] = []): Promise<{ result: WorkerResult; received?: ReceivedSpans }> {
  const id = `${++jobs}-${job.config}-${job.task}`;
  const before = await receiver!.stats();
  const result = await runWorker(script, { ...job, id, receiverUrl: receiver!.url }, nodeFlags);
  if (!result.spans) return { result };
  const after = await receiver!.stats();
  const tally = after.jobs[id] ?? { spans: 0, requests: 0, bytes: 0, rejected: 0, minAttributes: 0, maxAttributes: 0 };
  const received: ReceivedSpans = { ...tally, receiverCpuMs: after.cpuMs - before.cpuMs };
  const lost = result.spans.made - received.spans;
  if (lost !== 0 || received.rejected > 0) {
    log(`  ${job.config}/${job.task}: ${result.spans.made} spans made, ${received.spans} received (${lost} lost; ` +
      `${result.spans.queueDrops} reported dropped at the queue, ${received.rejected} requests rejected)`);
  }
  return { result, received };
}

// ---------------------------------------------------------------------------------------------
// Environment

function version(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

async function environment(server: PostgresServer): Promise<Environment> {
  const pg = require('pg') as typeof import('pg');
  const client = new pg.Client(server.url);
  await client.connect();
  const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
  await client.end();
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const ours = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  return {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${type()} ${release()}`,
    node: process.version,
    pg: version('pg'),
    pgPool: version('pg-pool'),
    instrumentationPg: version('@opentelemetry/instrumentation-pg'),
    otelSdk: `${version('@opentelemetry/sdk-metrics')}, ${version('@opentelemetry/sdk-trace-base')}`,
    server: `PostgreSQL ${rows[0]!.server_version}`,
    ours: `${ours.version} at ${gitDescribe()}`,
    cpuPinning: pinned.description,
  };
}

/** Commit of the build measured, and whether src/ had uncommitted changes. */
function gitDescribe(): string {
  const git = (...args: string[]) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? '';
  const commit = git('rev-parse', '--short', 'HEAD') || 'unknown commit';
  return git('status', '--porcelain', '--', 'src') ? `${commit} + uncommitted src/ changes` : commit;
}

async function prepareDatabase(server: PostgresServer, sql: string[]): Promise<void> {
  const pg = require('pg') as typeof import('pg');
  const client = new pg.Client(server.url);
  await client.connect();
  for (const s of sql) await client.query(s);
  await client.end();
}

// ---------------------------------------------------------------------------------------------
// Modes

function baseJob(server: PostgresServer, opts: Options, config: ConfigName, task: Job['task']): Omit<Job, 'id' | 'receiverUrl'> {
  return {
    config,
    task,
    repoRoot: ROOT,
    db: { host: server.host, port: server.port, user: server.user, password: server.password, database: server.database },
    concurrency: task === 'heap' || task === 'soak' ? 32 : CONCURRENCY[task],
    poolMax: 10,
    warmupMs: opts.warmupMs,
    durationMs: opts.durationMs,
    metricIntervalMs: 1000,
    heapClients: 80,
    soakQueries: opts.soakQueries,
  };
}

const log = (s: string) => process.stderr.write(`${s}\n`);
const rotate = <T>(xs: T[], n: number) => xs.map((_, i) => xs[(i + n) % xs.length]!);
const command = () => ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ');

async function runMain(server: PostgresServer, script: string, opts: Options, env: Environment): Promise<MainResults> {
  const started = Date.now();
  const records: RunRecord[] = [];
  const tasks: Job['task'][] = [...opts.workloads, 'heap'];
  for (let round = 1; round <= opts.rounds; round++) {
    await prepareDatabase(server, ['VACUUM bench_accounts']);
    for (const task of tasks) {
      for (const config of rotate(opts.configs, round - 1)) {
        const { result, received } = await runJob(script, baseJob(server, opts, config, task));
        records.push({ round, config, task, result, ...(received ? { received } : {}) });
        const shown =
          result.kind === 'throughput'
            ? `${((result.queries * 1000) / result.wallMs).toFixed(0)} queries/s, p99 ${result.p99Ms.toFixed(2)} ms`
            : result.kind === 'heap'
              ? `${result.perCheckoutBytes.toFixed(0)} B/checkout, ${result.perConnectionBytes.toFixed(0)} B/connection`
              : '';
        const spans = result.spans ? `spans ${result.spans.made} made, ${received?.spans ?? 0} received` : 'no spans';
        log(`[round ${round}/${opts.rounds}] ${task.padEnd(8)} ${config.padEnd(12)} ${shown}  (${spans}, metrics ${result.metrics.length})`);
      }
    }
  }
  return {
    environment: env,
    command: command(),
    rounds: opts.rounds,
    durationMs: opts.durationMs,
    warmupMs: opts.warmupMs,
    elapsedSeconds: (Date.now() - started) / 1000,
    configs: opts.configs,
    records,
  };
}

async function runSoakMode(server: PostgresServer, script: string, opts: Options, env: Environment): Promise<SoakResults> {
  const records: RunRecord[] = [];
  const configs = opts.configs.length === CONFIGURATIONS.length ? (['bare', 'ours-all'] as ConfigName[]) : opts.configs;
  for (const config of configs) {
    log(`soak: ${config}, ${opts.soakQueries} queries ...`);
    const { result, received } = await runJob(script, baseJob(server, opts, config, 'soak'));
    records.push({ round: 1, config, task: 'soak', result, ...(received ? { received } : {}) });
  }
  return { environment: env, command: command(), records };
}

async function runProfile(server: PostgresServer, script: string, opts: Options): Promise<void> {
  const config = opts.profile!;
  const dir = join(ROOT, 'bench', 'profiles');
  mkdirSync(dir, { recursive: true });
  const before = new Set(readdirSync(dir));
  const task = opts.workloads[0]!;
  log(`profiling ${config} on ${task} for ${opts.durationMs / 1000} s ...`);
  const { result, received } = await runJob(script, baseJob(server, opts, config, task), ['--cpu-prof', '--cpu-prof-dir', dir]);
  const file = readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no .cpuprofile written');
  if (result.kind !== 'throughput') throw new Error('expected a throughput result');
  log(`${((result.queries * 1000) / result.wallMs).toFixed(0)} queries/s under the profiler` +
    (result.spans ? `; ${result.spans.made} spans made, ${received?.spans ?? 0} received` : ''));
  // The profile also covers the warm-up, which ran at about the same rate.
  const queries = Math.round((result.queries * (opts.warmupMs + result.wallMs)) / result.wallMs);
  console.log(formatProfile(summarizeProfile(join(dir, file), ROOT, config), queries));
  console.log(`\nprofile: ${join('bench', 'profiles', file)} (open in Chrome DevTools or speedscope)`);
}

function readJson<T>(file: string): T | undefined {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined;
}

function writeDoc(main: MainResults | undefined, soak: SoakResults | undefined, cold: ColdResults | undefined): void {
  const findings = join(ROOT, 'bench', 'findings.md');
  writeFileSync(DOC, markdownReport(main, soak, existsSync(findings) ? readFileSync(findings, 'utf8') : undefined, cold));
}

/** Installs the fresh apps, measures their footprint and start-up, removes them. */
function runCold(opts: Options): ColdResults {
  const apps = installApps(ROOT, log);
  try {
    const footprint = measureFootprint(apps);
    const startup = measureStartup(apps, opts.startupRuns, log);
    return { footprint, startup };
  } finally {
    removeApps(apps);
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  if (opts.render) {
    writeDoc(readJson<MainResults>(join(RESULTS, 'latest.json')), readJson<SoakResults>(join(RESULTS, 'soak.json')), readJson<ColdResults>(join(RESULTS, 'cold.json')));
    log(`wrote ${DOC}`);
    return;
  }
  if (opts.cold === 'only') {
    // No PostgreSQL needed: start-up is measured without connecting.
    if (!existsSync(distEntry(ROOT))) throw new Error(`${distEntry(ROOT)} is missing: run npm run build`);
    const cold = runCold(opts);
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(join(RESULTS, 'cold.json'), JSON.stringify(cold, null, 1) + '\n');
    console.log(consoleReport(undefined, undefined, cold));
    if (opts.docs === 'always') {
      writeDoc(readJson<MainResults>(join(RESULTS, 'latest.json')), readJson<SoakResults>(join(RESULTS, 'soak.json')), cold);
      log(`\nwrote ${DOC}`);
    } else log('\n(wrote bench/results/cold.json; docs/benchmarks.md left as is: --write-docs, or --render later)');
    return;
  }
  const ourConfigs = opts.configs.filter((c) => c.startsWith('ours-'));
  if (ourConfigs.length > 0 && !existsSync(distEntry(ROOT))) {
    log(`warning: ${distEntry(ROOT)} is missing (run npm run build): skipping ${ourConfigs.join(', ')}`);
    opts.configs = opts.configs.filter((c) => !c.startsWith('ours-'));
  }
  const script = transpileWorker();
  const receiverScript = join(OUT, 'receiver.js');
  workerEnv = { ...process.env, ...opts.env };
  if (Object.keys(opts.env).length > 0) log(`worker environment: ${JSON.stringify(opts.env)}`);

  let server: PostgresServer | undefined;
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    current?.kill('SIGKILL');
    receiver?.stop();
    await server?.stop();
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      log(`\n${sig}: stopping PostgreSQL`);
      void stop().finally(() => process.exit(130));
    });
  }

  try {
    receiver = await startReceiver(receiverScript);
    server = await startPostgres({ maxConnections: 100, settings: { synchronous_commit: 'off' } });
    pinned = pinning(opts.pin);
    pinned.toServerCpu(server.pid);
    pinned.toServerCpu(receiver.pid);
    log(`CPUs: ${pinned.description}`);
    await prepareDatabase(server, SETUP_SQL);
    const env = await environment(server);
    log(`PostgreSQL ${env.server} on port ${server.port}; configurations: ${opts.configs.join(', ')}`);

    if (opts.profile) {
      await runProfile(server, script, opts);
      return;
    }
    mkdirSync(RESULTS, { recursive: true });
    const complete =
      !opts.quick &&
      Object.keys(opts.env).length === 0 &&
      opts.configs.length === CONFIGURATIONS.length &&
      opts.workloads.length === WORKLOADS.length;
    // Only the default soak (a million queries, bare and ours-all) stands for the soak target.
    const completeSoak =
      Object.keys(opts.env).length === 0 && opts.soakQueries === 1_000_000 && opts.configs.length === CONFIGURATIONS.length;
    const writeDocs = opts.docs === 'always' || (opts.docs === 'auto' && (opts.soak ? completeSoak : complete));
    let main: MainResults | undefined;
    let soak: SoakResults | undefined;
    let cold = readJson<ColdResults>(join(RESULTS, 'cold.json'));
    if (opts.soak) {
      soak = await runSoakMode(server, script, opts, env);
      writeFileSync(join(RESULTS, completeSoak ? 'soak.json' : 'partial-soak.json'), JSON.stringify(soak, null, 1) + '\n');
      main = readJson<MainResults>(join(RESULTS, 'latest.json'));
    } else {
      main = await runMain(server, script, opts, env);
      writeFileSync(join(RESULTS, complete ? 'latest.json' : 'partial.json'), JSON.stringify(main, null, 1) + '\n');
      soak = readJson<SoakResults>(join(RESULTS, 'soak.json'));
      const sanity = main.records.filter((r) => r.task === 'query' && r.round === 1);
      for (const r of sanity) {
        const spans = r.result.spans ? `${r.result.spans.made} spans made, ${r.received?.spans ?? 0} received` : 'no spans';
        log(`${r.config}: ${spans}; metrics (${r.result.metricsPath}): ${r.result.metrics.join(', ') || '-'}`);
      }
      if (complete && opts.cold !== 'never') {
        try {
          cold = runCold(opts);
          writeFileSync(join(RESULTS, 'cold.json'), JSON.stringify(cold, null, 1) + '\n');
        } catch (err) {
          log(`cold start and footprint not measured: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    console.log(consoleReport(opts.soak ? undefined : main, soak, cold));
    if (writeDocs) {
      writeDoc(main, soak, cold);
      log(`\nwrote ${DOC}`);
    } else {
      log('\n(partial or quick run: docs/benchmarks.md left as is; --write-docs to overwrite)');
    }
    log(`took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  } finally {
    await stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exitCode = 1;
});
