// Reads a V8 .cpuprofile (from `node --cpu-prof`) and lists the frames with the most self time.
import { readFileSync } from 'node:fs';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Frame {
  name: string;
  location: string;
  selfMs: number;
  /** share of on-CPU JavaScript time: total minus (idle) and native socket writes (see below) */
  share: number;
}

/**
 * Frames left out of the on-CPU denominator. On a loaded machine V8's sampler charges the time the
 * thread is descheduled inside the write syscall to `writeBuffer`; it is the same in every
 * configuration and says nothing about the instrumentation.
 */
const OFF_CPU = new Set(['(idle)', 'writeBuffer', 'writev']);

export interface ProfileSummary {
  totalMs: number;
  /** totalMs less the OFF_CPU frames */
  activeMs: number;
  /** self time by area: dist/ (this package), the incumbent, the SDK, the bench's own code, pg, node internals, other */
  areas: Record<string, number>;
  top: Frame[];
  /** frames of the instrumentation under test (see instrumentationCode) */
  topInInstrumentation: Frame[];
  instrumentationLabel: string;
}

function area(url: string, dist: string): string {
  if (url.startsWith(dist)) return 'pg-pool-otel dist/';
  if (url.includes('@opentelemetry/instrumentation-pg/')) return '@opentelemetry/instrumentation-pg';
  if (url.includes('@opentelemetry/')) return '@opentelemetry/* (SDK, exporter)';
  if (url.includes('/bench/.out/')) return 'bench/ (workload, floor wrapper)';
  if (/node_modules\/pg(-pool|-protocol|-types|-connection-string)?\//.test(url)) return 'pg, pg-pool, pg-protocol';
  if (url.startsWith('node:') || url === '') return 'node internals, GC, idle';
  return 'other';
}

/** Where the code of each configuration's instrumentation lives, to list its own frames. */
export function instrumentationCode(config: string, repoRoot: string): { label: string; matches: (url: string) => boolean } {
  if (config === 'floor') return { label: 'bench/floor.ts', matches: (url) => url.endsWith('/bench/.out/floor.js') };
  if (config === 'incumbent') {
    return { label: '@opentelemetry/instrumentation-pg', matches: (url) => url.includes('@opentelemetry/instrumentation-pg/') };
  }
  const dist = `file://${repoRoot}/dist/`;
  return { label: 'dist/', matches: (url) => url.startsWith(dist) };
}

export function summarizeProfile(file: string, repoRoot: string, config: string, limit = 20): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

  const dist = `file://${repoRoot}/dist/`;
  const own = instrumentationCode(config, repoRoot);
  const frames = new Map<string, { name: string; location: string; url: string; us: number }>();
  let totalUs = 0;
  let offUs = 0;
  const areas: Record<string, number> = {};
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    totalUs += us;
    if (OFF_CPU.has(functionName) && !url) {
      offUs += us;
      continue;
    }
    const a = area(url, dist);
    areas[a] = (areas[a] ?? 0) + us / 1000;
    const location = url ? `${url.replace(`file://${repoRoot}/`, '')}:${lineNumber + 1}` : '';
    const key = `${functionName}@${location}`;
    const f = frames.get(key) ?? { name: functionName || '(anonymous)', location, url, us: 0 };
    f.us += us;
    frames.set(key, f);
  }
  const sorted = [...frames.values()].sort((a, b) => b.us - a.us);
  const toFrame = (f: { name: string; location: string; us: number }): Frame => ({
    name: f.name,
    location: f.location,
    selfMs: f.us / 1000,
    share: f.us / (totalUs - offUs),
  });
  return {
    totalMs: totalUs / 1000,
    activeMs: (totalUs - offUs) / 1000,
    areas,
    top: sorted.slice(0, limit).map(toFrame),
    topInInstrumentation: sorted.filter((f) => own.matches(f.url)).slice(0, limit).map(toFrame),
    instrumentationLabel: own.label,
  };
}

/** `queries`: roughly how many queries the profiled process ran, for a µs/query column. */
export function formatProfile(s: ProfileSummary, queries: number): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(6);
  const perQuery = (ms: number) => `${((ms * 1000) / queries).toFixed(2).padStart(6)} µs/q`;
  const out = [
    `sampled ${s.totalMs.toFixed(0)} ms, of which ${s.activeMs.toFixed(0)} ms on CPU outside (idle) and socket writes;`,
    `about ${queries} queries; shares below are of the on-CPU time`,
    '',
    'self time by area:',
  ];
  for (const [a, ms] of Object.entries(s.areas).sort((x, y) => y[1] - x[1])) {
    out.push(`  ${pct(ms / s.activeMs)}  ${ms.toFixed(0).padStart(7)} ms  ${perQuery(ms)}  ${a}`);
  }
  const list = (title: string, frames: Frame[]) => {
    out.push('', title);
    for (const f of frames) {
      out.push(`  ${pct(f.share)}  ${f.selfMs.toFixed(1).padStart(8)} ms  ${perQuery(f.selfMs)}  ${f.name}  ${f.location}`);
    }
    if (frames.length === 0) out.push('  (none)');
  };
  list('top self-time frames:', s.top);
  list(`top self-time frames inside ${s.instrumentationLabel}:`, s.topInInstrumentation);
  return out.join('\n');
}
