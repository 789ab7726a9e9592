// A small parser for the Prometheus text exposition format (what a /metrics endpoint serves),
// and the few queries the live view needs. Comments, HELP and TYPE lines are skipped.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/g;

function unescape(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(raw: string): number {
  if (raw === '+Inf') return Infinity;
  if (raw === '-Inf') return -Infinity;
  return Number(raw);
}

export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = unescape(l[2]!);
    samples.push({ name: m[1]!, labels, value: parseValue(m[3]!) });
  }
  return samples;
}

export type Match = Record<string, string>;

function matches(s: Sample, name: string, match: Match): boolean {
  if (s.name !== name) return false;
  for (const [k, v] of Object.entries(match)) if (s.labels[k] !== v) return false;
  return true;
}

export function select(samples: Sample[], name: string, match: Match = {}): Sample[] {
  return samples.filter((s) => matches(s, name, match));
}

/** Sum of the matching series, or undefined when there is none (shown as n/a). */
export function sum(samples: Sample[], name: string, match: Match = {}): number | undefined {
  const found = select(samples, name, match);
  return found.length === 0 ? undefined : found.reduce((a, s) => a + s.value, 0);
}

/** Largest value of the matching series, or undefined when there is none. */
export function max(samples: Sample[], name: string, match: Match = {}): number | undefined {
  const found = select(samples, name, match);
  return found.length === 0 ? undefined : Math.max(...found.map((s) => s.value));
}

/** Distinct values of one label among the matching series. */
export function labelValues(samples: Sample[], name: string, label: string): string[] {
  const out = new Set<string>();
  for (const s of samples) if (s.name === name && s.labels[label] !== undefined) out.add(s.labels[label]!);
  return [...out].sort();
}

/** Cumulative bucket counts of one histogram, `le` ascending (several series are added up). */
export function buckets(samples: Sample[], histogram: string, match: Match = {}): [number, number][] {
  const byLe = new Map<number, number>();
  for (const s of select(samples, `${histogram}_bucket`, match)) {
    const le = parseValue(s.labels.le ?? '');
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  return [...byLe.entries()].sort((a, b) => a[0] - b[0]);
}

/** Bucket counts of `now` minus those of `before` (what was observed in between). */
export function bucketDelta(now: [number, number][], before: [number, number][]): [number, number][] {
  const old = new Map(before);
  return now.map(([le, c]) => [le, c - (old.get(le) ?? 0)]);
}

/** Like PromQL histogram_quantile: linear interpolation inside the bucket; undefined with no data. */
export function quantile(q: number, cumulative: [number, number][]): number | undefined {
  const total = cumulative.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of cumulative) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      const inBucket = count - prevCount;
      return inBucket <= 0 ? le : prevLe + ((le - prevLe) * (rank - prevCount)) / inBucket;
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}
