// The live view. On a terminal it redraws one block in place about once a second (ANSI: cursor up,
// clear down); elsewhere (CI, a pipe) it prints a plain line per pool every few seconds. Log
// lines (starts, the package's reports) are printed above the block and stay in the scrollback.
import type { Frame, PoolRow } from './metrics';
import type { Alert } from './prometheus';
import { count, rate, seconds } from './format';

export interface Header {
  index: number;
  of: number;
  name: string;
  title: string;
  watch: string;
  elapsedS: number;
  totalS: number;
  load: string;
  reqPerSec: number;
}

const COLUMNS: [string, number, (r: PoolRow) => string][] = [
  ['service', 14, (r) => r.service],
  ['pool', 24, (r) => r.pool],
  ['open', 5, (r) => count(r.open)],
  ['used', 5, (r) => count(r.used)],
  ['idle', 5, (r) => count(r.idle)],
  ['max', 4, (r) => count(r.max)],
  ['wait', 5, (r) => count(r.waiting)],
  ['p95 wait', 9, (r) => seconds(r.p95Wait)],
  ['timeouts', 9, (r) => count(r.timeouts)],
  ['leaked', 7, (r) => count(r.leaked)],
  ['oldest', 7, (r) => seconds(r.oldestAge)],
  ['closed/s', 9, (r) => rate(r.closedPerSec)],
  ['errors', 7, (r) => count(r.errors)],
  ['in-tx', 6, (r) => count(r.releasedInTransaction)],
];

function cells(values: string[]): string {
  return values.map((v, i) => (i < 2 ? v.padEnd(COLUMNS[i]![1]) : v.padStart(COLUMNS[i]![1]))).join(' ');
}

function serverLine(frame: Frame): string {
  const s = frame.server;
  if (s.connections === undefined && s.usable === undefined && s.idleInTransactionAge === undefined) return 'server: n/a (not sampled yet)';
  const limit = s.usable === undefined ? 'n/a' : `${s.usable} usable (max_connections ${s.maxConnections})`;
  return `server: ${count(s.connections)} connections of ${limit} · oldest idle in transaction ${seconds(s.idleInTransactionAge)}`;
}

/** Why a value on screen can read n/a: printed once, before the first scenario. */
export function legendLines(options: { bare: boolean; sampleIntervalMs: string }): string[] {
  if (options.bare) {
    return ['legend: --bare runs the service without the package, so its /metrics has no pool or server series: every such value reads n/a.'];
  }
  return [
    "legend: n/a marks a value the service's /metrics does not give yet:",
    '  p95 wait, closed/s      measured over the last 5 s of scrapes: n/a on the first scrape, and while no checkout (p95 wait) or close (closed/s) happened',
    '  errors, in-tx, timeouts counters appear with their first event: n/a means none so far',
    `  server                  n/a until the server is first sampled (right after the first connection, then every ${options.sampleIntervalMs} ms, on the package's own monitoring connection)`,
  ];
}

function alertLine(alerts: Alert[] | undefined): string | undefined {
  if (alerts === undefined) return undefined;
  if (alerts.length === 0) return 'alerts: none pending or firing';
  const names = new Map<string, string>();
  for (const a of alerts) if (names.get(a.name) !== 'firing') names.set(a.name, a.state);
  return `alerts: ${[...names].map(([n, s]) => `${n} (${s})`).join(', ')}`;
}

/** Breaks a long line at ", " so that nothing is cut off. */
function wrap(line: string, width: number): string[] {
  const out: string[] = [];
  let current = '';
  for (const part of line.split(', ')) {
    const next = current === '' ? part : `${current}, ${part}`;
    if (next.length > width && current !== '') {
      out.push(`${current},`);
      current = `  ${part}`;
    } else current = next;
  }
  return [...out, current];
}

export class LiveView {
  private drawn = 0;
  private lastPlain = 0;
  private block: string[] = [];

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly tty: boolean,
    private readonly plainEveryMs = 2000
  ) {}

  /** A permanent line, printed above the live block. */
  log(line: string): void {
    this.erase();
    this.out.write(`${line}\n`);
    this.draw();
  }

  update(header: Header, frame: Frame, alerts: Alert[] | undefined): void {
    if (this.tty) {
      this.erase();
      this.block = this.render(header, frame, alerts);
      this.draw();
    } else if (frame.at - this.lastPlain >= this.plainEveryMs) {
      this.lastPlain = frame.at;
      for (const line of this.plain(header, frame, alerts)) this.out.write(`${line}\n`);
    }
  }

  /** Leaves the last block on screen and stops redrawing it. */
  close(): void {
    this.block = [];
    this.drawn = 0;
  }

  private erase(): void {
    if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}A\x1b[J`);
    this.drawn = 0;
  }

  private draw(): void {
    if (!this.tty || this.block.length === 0) return;
    const width = this.out.columns || 120;
    // Longer lines would wrap and break the cursor arithmetic.
    for (const line of this.block) this.out.write(`${line.slice(0, width - 1)}\n`);
    this.drawn = this.block.length;
  }

  private render(h: Header, frame: Frame, alerts: Alert[] | undefined): string[] {
    const lines = [
      `── ${h.index}/${h.of} ${h.name} · ${Math.floor(h.elapsedS)}s of ${h.totalS}s ` + '─'.repeat(40),
      h.title,
      `watch: ${h.watch}`,
      `load: ${h.reqPerSec.toFixed(0)} req/s · ${h.load}`,
      '',
      cells(COLUMNS.map((c) => c[0])),
      ...frame.pools.map((r) => cells(COLUMNS.map((c) => c[2](r)))),
    ];
    if (frame.pools.length === 0) lines.push('  (no pool series on /metrics yet)');
    for (const name of frame.unreachable) lines.push(`  ${name}: /metrics did not answer`);
    lines.push(serverLine(frame));
    const a = alertLine(alerts);
    if (a) lines.push(...wrap(a, (this.out.columns || 120) - 1));
    return lines;
  }

  private plain(h: Header, frame: Frame, alerts: Alert[] | undefined): string[] {
    const tag = `[${h.name} ${Math.floor(h.elapsedS)}s]`;
    const lines = frame.pools.map(
      (r) => `${tag} ${r.service} ${r.pool}: ` + COLUMNS.slice(2).map(([name, , fn]) => `${name} ${fn(r)}`).join(', ')
    );
    const a = alertLine(alerts);
    lines.push(`${tag} ${serverLine(frame)} · load ${h.reqPerSec.toFixed(0)} req/s${a ? ` · ${a}` : ''}`);
    return lines;
  }
}
