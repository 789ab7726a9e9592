// The closing summary: one line per scenario saying what the package detected.
import type { Scenario, Verdict } from './scenarios';
import type { Observed } from './observe';

export interface Result {
  scenario: Scenario;
  verdict: Verdict;
  observed: Observed;
}

export function summaryLines(results: Result[]): string[] {
  const lines = ['', 'Summary: what the package detected, read from /metrics and its log'];
  const width = Math.max(...results.map((r) => r.scenario.name.length));
  for (const { scenario, verdict, observed } of results) {
    lines.push(`  ${scenario.name.padEnd(width)}  ${verdict.word.padEnd(12)}  ${verdict.text}`);
    if (observed.alerts.size > 0) lines.push(`  ${''.padEnd(width)}  ${''.padEnd(12)}  alerts: ${[...observed.alerts].map(([n, s]) => `${n} (${s})`).join(', ')}`);
  }
  return lines;
}
