// Test support for the alert and dashboard checks: finding the Prometheus tools (skip loudly
// locally, fail under CI), static PromQL checks, and a real Prometheus server for the e2e test.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';

// The package ships CommonJS (dist/index.cjs) but declares its types for ESM only.
type LezerPromql = typeof import('@prometheus-io/lezer-promql', { with: { 'resolution-mode': 'import' } });
const { parser } = require('@prometheus-io/lezer-promql') as LezerPromql;

export const ROOT = join(__dirname, '..', '..');

export function which(tool: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, tool);
    if (dir !== '' && existsSync(p)) return p;
  }
  return undefined;
}

/** The tool's path; without it the test is skipped (saying so), or fails when CI=true. */
export function requireTool(t: TestContext, tool: 'promtool' | 'amtool' | 'prometheus'): string | undefined {
  const p = which(tool);
  if (p !== undefined) return p;
  const why = `${tool} not found: install the Debian packages prometheus and prometheus-alertmanager`;
  if (process.env.CI === 'true') throw new Error(`${why} (required under CI=true)`);
  console.warn(`\n*** SKIPPED: ${why} ***\n`);
  t.skip(why);
  return undefined;
}

export function runTool(path: string, args: string[], cwd = ROOT): { code: number; output: string } {
  const r = spawnSync(path, args, { cwd, encoding: 'utf8' });
  return { code: r.status ?? 1, output: `${r.stdout}${r.stderr}` };
}

/** Grafana variables replaced by values that make a valid, non-empty PromQL query. */
export function substituteVariables(expr: string, values: Record<string, string> = {}): string {
  return expr
    .replace(/\$__rate_interval|\$__interval|\$__range/g, values.__rate_interval ?? '1m')
    .replace(/\$\{?(\w+)\}?/g, (_, name: string) => values[name] ?? '.*');
}

/** Positions and text of PromQL syntax errors (lezer error nodes); empty when the query parses. */
export function promqlErrors(expr: string): string[] {
  const errors: string[] = [];
  parser.parse(expr).iterate({
    enter: (n) => {
      if (n.type.isError) errors.push(`at ${n.from}: ${JSON.stringify(expr.slice(Math.max(0, n.from - 20), n.from + 20))}`);
    },
  });
  return errors;
}

/** Metric names used by vector selectors in a PromQL expression. */
export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  parser.parse(expr).iterate({
    enter: (n) => {
      if (n.name !== 'VectorSelector') return;
      const id = n.node.getChild('Identifier');
      if (id) names.add(expr.slice(id.from, id.to));
    },
  });
  return [...names];
}

/** Prometheus' `up` and the names listed in docs/metrics.md: backticked names in the column whose header
 * mentions "Prometheus"; `x_{bucket,sum,count}` and `x_bucket`, `_sum`, `_count` expand to three. */
export function documentedMetrics(markdown: string): Set<string> {
  // `up` is Prometheus' own, per scrape target; the rules use it.
  const names = new Set<string>(['up']);
  let column = -1;
  for (const line of markdown.split('\n')) {
    if (!line.trim().startsWith('|')) {
      column = -1;
      continue;
    }
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (column < 0) {
      column = cells.findIndex((c) => /prometheus/i.test(c));
      continue;
    }
    const cell = cells[column] ?? '';
    const codes = [...cell.matchAll(/`([^`]+)`/g)].map((x) => x[1] as string);
    // Backticked names as published; a bare name (as in the draft catalogue) is accepted too.
    if (codes.length === 0 && /^[a-zA-Z_:][\w:{},]*$/.test(cell)) codes.push(cell);
    let previous = '';
    for (const code of codes) {
      const brace = /^(.*)\{([^}]*)\}(.*)$/.exec(code);
      if (brace) for (const part of (brace[2] as string).split(',')) names.add(`${brace[1]}${part.trim()}${brace[3]}`);
      // `x_bucket`, `_sum`, `_count`: a leading underscore replaces the previous name's suffix
      else if (code.startsWith('_') && previous !== '') names.add(previous.replace(/_[a-z]+$/, '') + code);
      else names.add((previous = code));
    }
  }
  return names;
}

export interface PrometheusServer {
  url: string;
  pid: number | undefined;
  stop(): Promise<void>;
}

/** Starts the real `prometheus` binary on a loopback port with a temporary config and data dir. */
export async function startPrometheus(opts: { binary: string; port: number; targets: string[]; rules: string; scrapeInterval?: string }): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'pg-pool-otel-prom-'));
  const interval = opts.scrapeInterval ?? '1s';
  writeFileSync(join(dir, 'rules.yml'), opts.rules);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global:',
      `  scrape_interval: ${interval}`,
      `  evaluation_interval: ${interval}`,
      'rule_files: [rules.yml]',
      'scrape_configs:',
      '  - job_name: e2e-app',
      '    static_configs:',
      `      - targets: [${opts.targets.map((t) => `"${t}"`).join(', ')}]`,
      '',
    ].join('\n')
  );
  const log: string[] = [];
  const child: ChildProcess = spawn(
    opts.binary,
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${opts.port}`, '--log.level=warn'],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }
  );
  child.stdout?.on('data', (d: Buffer) => log.push(String(d)));
  child.stderr?.on('data', (d: Buffer) => log.push(String(d)));
  const url = `http://127.0.0.1:${opts.port}`;
  const stop = async () => {
    if (child.exitCode === null && child.pid !== undefined) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      if ((await fetch(`${url}/-/ready`)).ok) return { url, pid: child.pid, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`prometheus did not become ready:\n${log.join('')}`);
}

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export async function instantQuery(url: string, query: string): Promise<Sample[]> {
  const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: Sample[] } };
  if (body.status !== 'success' || !body.data) throw new Error(`query failed: ${query}: ${body.error ?? res.status}`);
  return body.data.resultType === 'vector' ? body.data.result : [];
}

export interface ActiveAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing' | 'inactive';
}

export async function activeAlerts(url: string): Promise<ActiveAlert[]> {
  const body = (await (await fetch(`${url}/api/v1/alerts`)).json()) as { data: { alerts: ActiveAlert[] } };
  return body.data.alerts;
}

export function readRepoFile(path: string): string {
  return readFileSync(join(ROOT, path), 'utf8');
}
