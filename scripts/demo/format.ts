// Number formatting shared by the live view and the summary; absent series read "n/a".

export const na = 'n/a';

export function count(n: number | undefined): string {
  return n === undefined ? na : String(Math.round(n));
}

export function seconds(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return na;
  if (s === 0) return '0s';
  if (s < 0.001) return `${(s * 1e6).toFixed(0)}µs`;
  if (s < 1) return `${(s * 1000).toFixed(s < 0.1 ? 1 : 0)}ms`;
  return `${s.toFixed(1)}s`;
}

export function rate(n: number | undefined): string {
  return n === undefined ? na : n.toFixed(1);
}

/** For the summary's counters: a counter that never moved has no series at all. */
export function none(n: number | undefined): string {
  return n === undefined || n === 0 ? 'no' : String(Math.round(n));
}
