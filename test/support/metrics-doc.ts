// Reads docs/metrics.md, the single list of metrics: the Prometheus-name column of its tables.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DocumentedMetric {
  otelName: string;
  /** Sample names as scraped: histograms list _bucket, _sum and _count. */
  prometheusNames: string[];
  type: string;
  unit: string;
  section: string;
}

export function documentedMetrics(root = join(__dirname, '..', '..')): DocumentedMetric[] {
  const text = readFileSync(join(root, 'docs', 'metrics.md'), 'utf8');
  const out: DocumentedMetric[] = [];
  let section = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('## ')) section = line.slice(3).trim();
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 6 || !/^`[a-z_.]+`$/.test(cells[1] ?? '')) continue;
    const otelName = cells[1]!.slice(1, -1);
    const promCell = cells[2] ?? '';
    const names = [...promCell.matchAll(/`([a-z_:][a-z0-9_:]*)`/g)].map((m) => m[1]!);
    if (names.length === 0) continue;
    // `x_bucket`, `_sum`, `_count` shorthand
    const base = names[0]!.replace(/_bucket$/, '');
    const expanded = names.map((n) => (n.startsWith('_') ? base + n : n));
    out.push({ otelName, prometheusNames: expanded, type: cells[3] ?? '', unit: (cells[4] ?? '').replace(/`/g, ''), section });
  }
  return out;
}
