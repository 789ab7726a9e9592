// What a service pays before its first query: the install footprint of a fresh app, and the CPU and
// peak memory the preload adds at start-up. Both against the incumbent's minimal set-up
// (@opentelemetry/instrumentation-pg + the SDK's metrics + the Prometheus exporter) and bare pg.
//
// Footprint: `npm pack` of this build, then `npm install` into three empty apps in a temp
// directory — pg alone, pg + the packed tarball, pg + the incumbent's minimal set-up (the versions
// this repository's lock file resolved) — and the size on disk of each node_modules.
// Start-up: in those same apps, `node -e PROBE` bare, with `--require pg-pool-otel/register`
// (its defaults: Prometheus endpoint, no spans) and with `--require ./incumbent.js`; the probe
// reports the process's own user+system CPU and peak RSS (process.resourceUsage()) at the first
// turn of the event loop, where an app's first line would run, then exits. Runs are interleaved;
// "added" is each run minus the bare run of the same round.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, lstatSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FootprintApp {
  name: 'pg' | 'ours' | 'incumbent';
  /** what was installed besides pg */
  packages: string[];
  bytes: number;
  /** packages in node_modules (directories with a package.json) */
  packageCount: number;
  /** bytes under node_modules/@opentelemetry */
  otelBytes: number;
}

export interface FootprintResults {
  date: string;
  node: string;
  npm: string;
  apps: FootprintApp[];
}

export interface StartupVariant {
  name: 'bare' | 'ours' | 'incumbent';
  command: string;
  cpuMs: number[];
  peakRssBytes: number[];
}

export interface StartupResults {
  date: string;
  node: string;
  runs: number;
  variants: StartupVariant[];
}

/** The incumbent's minimal set-up: metrics served to Prometheus, no tracer provider. */
const INCUMBENT_SETUP = `// The incumbent's minimal set-up: instrumentation-pg, the SDK's metrics, a Prometheus endpoint.
const { metrics } = require('@opentelemetry/api');
const { MeterProvider } = require('@opentelemetry/sdk-metrics');
const { PrometheusExporter } = require('@opentelemetry/exporter-prometheus');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg');
const exporter = new PrometheusExporter({ port: Number(process.env.OTEL_EXPORTER_PROMETHEUS_PORT ?? 9464) });
const meterProvider = new MeterProvider({ readers: [exporter] });
metrics.setGlobalMeterProvider(meterProvider);
registerInstrumentations({ instrumentations: [new PgInstrumentation()], meterProvider });
`;

// Peak RSS from /proc/self/status (VmHWM, this process's own memory map): getrusage's maxRSS can
// carry the spawning process's high-water mark across exec, which made every variant read alike.
const PROBE =
  'setImmediate(() => { const r = process.resourceUsage(); let kib = r.maxRSS; ' +
  'try { const m = /VmHWM:\\s+(\\d+) kB/.exec(require("fs").readFileSync("/proc/self/status", "utf8")); if (m) kib = Number(m[1]); } catch {} ' +
  'process.stdout.write("PROBE " + JSON.stringify({ cpuUs: r.userCPUTime + r.systemCPUTime, maxRssKiB: kib }) + "\\n"); process.exit(0); })';

function versionIn(root: string, pkg: string): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Bytes on disk (allocated blocks) under `dir`, as `du` counts them; each inode once. */
function diskBytes(dir: string, seen = new Set<number>()): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p, { bigint: false });
    if (seen.has(st.ino)) continue;
    seen.add(st.ino);
    total += st.blocks * 512;
    if (st.isDirectory()) total += diskBytes(p, seen);
  }
  return total;
}

function countPackages(nodeModules: string): number {
  let n = 0;
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (name.startsWith('.')) continue;
      const p = join(dir, name);
      if (!lstatSync(p).isDirectory()) continue;
      if (name.startsWith('@')) walk(p);
      else {
        n++;
        const nested = join(p, 'node_modules');
        try {
          if (lstatSync(nested).isDirectory()) walk(nested);
        } catch {
          // no nested node_modules
        }
      }
    }
  };
  walk(nodeModules);
  return n;
}

export interface ColdApps {
  dir: string;
  apps: Record<FootprintApp['name'], string>;
}

/** Packs this build and installs the three apps; throws with npm's output when npm fails. */
export function installApps(root: string, log: (s: string) => void): ColdApps {
  const dir = mkdtempSync(join(tmpdir(), 'pg-pool-otel-cold-'));
  const npm = (cwd: string, args: string[]) => {
    const r = spawnSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_fund: 'false', npm_config_audit: 'false' } });
    if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed in ${cwd}:\n${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  log(`footprint: packing this build into ${dir} ...`);
  const tarball = npm(root, ['pack', '--ignore-scripts', '--pack-destination', dir]).trim().split('\n').pop()!;
  const pg = `pg@${versionIn(root, 'pg')}`;
  const incumbent = [
    `@opentelemetry/instrumentation-pg@${versionIn(root, '@opentelemetry/instrumentation-pg')}`,
    `@opentelemetry/sdk-metrics@${versionIn(root, '@opentelemetry/sdk-metrics')}`,
    `@opentelemetry/exporter-prometheus@${versionIn(root, '@opentelemetry/exporter-prometheus')}`,
    `@opentelemetry/api@${versionIn(root, '@opentelemetry/api')}`,
  ];
  const specs: Record<FootprintApp['name'], string[]> = { pg: [], ours: [join(dir, tarball)], incumbent };
  const apps = {} as Record<FootprintApp['name'], string>;
  for (const name of ['pg', 'ours', 'incumbent'] as const) {
    const app = join(dir, name);
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: `cold-${name}`, version: '1.0.0', private: true }) + '\n');
    writeFileSync(join(app, 'incumbent.js'), INCUMBENT_SETUP);
    log(`footprint: npm install ${[pg, ...specs[name]].map((s) => s.replace(dir, '.')).join(' ')} ...`);
    npm(app, ['install', '--no-package-lock', '--ignore-scripts', pg, ...specs[name]]);
    apps[name] = app;
  }
  return { dir, apps };
}

export function measureFootprint(cold: ColdApps): FootprintResults {
  const npmVersion = execFileSync('npm', ['--version'], { encoding: 'utf8' }).trim();
  const installed: Record<FootprintApp['name'], string[]> = { pg: [], ours: ['pg-pool-otel (packed)'], incumbent: ['@opentelemetry/instrumentation-pg', '@opentelemetry/sdk-metrics', '@opentelemetry/exporter-prometheus', '@opentelemetry/api'] };
  const apps = (['pg', 'ours', 'incumbent'] as const).map((name): FootprintApp => {
    const nm = join(cold.apps[name], 'node_modules');
    let otelBytes = 0;
    try {
      otelBytes = diskBytes(join(nm, '@opentelemetry'));
    } catch {
      // pg alone has none
    }
    return { name, packages: installed[name], bytes: diskBytes(nm), packageCount: countPackages(nm), otelBytes };
  });
  return { date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC', node: process.version, npm: npmVersion, apps };
}

export function measureStartup(cold: ColdApps, runs: number, log: (s: string) => void): StartupResults {
  const variants: StartupVariant[] = [
    { name: 'bare', command: 'node -e PROBE', cpuMs: [], peakRssBytes: [] },
    { name: 'ours', command: 'node --require pg-pool-otel/register -e PROBE', cpuMs: [], peakRssBytes: [] },
    { name: 'incumbent', command: 'node --require ./incumbent.js -e PROBE', cpuMs: [], peakRssBytes: [] },
  ];
  const args: Record<StartupVariant['name'], { cwd: string; argv: string[] }> = {
    bare: { cwd: cold.apps.pg, argv: ['-e', PROBE] },
    ours: { cwd: cold.apps.ours, argv: ['--require', 'pg-pool-otel/register', '-e', PROBE] },
    incumbent: { cwd: cold.apps.incumbent, argv: ['--require', './incumbent.js', '-e', PROBE] },
  };
  // Port 0: each run binds a free port, so runs never meet a port in use.
  const env = { ...process.env, OTEL_EXPORTER_PROMETHEUS_PORT: '0', NODE_OPTIONS: '' };
  log(`start-up: ${runs} rounds of bare, ours, incumbent ...`);
  for (let round = 0; round <= runs; round++) {
    for (const v of variants) {
      const { cwd, argv } = args[v.name];
      const r = spawnSync(process.execPath, argv, { cwd, env, encoding: 'utf8', timeout: 30_000 });
      const line = /^PROBE (.*)$/m.exec(r.stdout ?? '')?.[1];
      if (!line) throw new Error(`start-up probe ${v.name} failed (${r.status ?? r.signal}):\n${r.stderr}${r.stdout}`);
      // Round 0 warms the file cache and is not counted.
      if (round === 0) continue;
      const p = JSON.parse(line) as { cpuUs: number; maxRssKiB: number };
      v.cpuMs.push(p.cpuUs / 1000);
      v.peakRssBytes.push(p.maxRssKiB * 1024);
    }
  }
  return { date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC', node: process.version, runs, variants };
}

export function removeApps(cold: ColdApps): void {
  rmSync(cold.dir, { recursive: true, force: true });
}
