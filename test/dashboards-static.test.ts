// Static checks of the generated dashboards: importable JSON, unique ids, a non-overlapping grid,
// units and descriptions everywhere, PromQL that parses, and only published metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { documentedMetrics, metricNames, promqlErrors, readRepoFile, substituteVariables } from './support/prometheus';
import { SERVER_DASHBOARD_PATH, SERVICE_DASHBOARD_PATH } from '../src/cli/generate';
import type { Dashboard, Panel } from '../src/cli/dashboards/model';

const files = [SERVICE_DASHBOARD_PATH, SERVER_DASHBOARD_PATH];
const load = (f: string) => JSON.parse(readRepoFile(f)) as Dashboard;

/** Every PromQL expression of a dashboard: panel targets and the selectors inside label_values(). */
export function dashboardQueries(d: Dashboard): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const p of d.panels) for (const t of p.targets ?? []) out.push({ where: `${p.title} ${t.refId}`, expr: t.expr });
  for (const v of d.templating.list) {
    if (v.type !== 'query' || typeof v.query === 'string') continue;
    const m = /^label_values\((.*),\s*(\w+)\)$/.exec(v.query.query);
    assert.ok(m, `variable ${v.name}: unexpected query ${v.query.query}`);
    out.push({ where: `variable ${v.name}`, expr: m[1] as string });
  }
  return out;
}

for (const file of files) {
  test(`${file}: importable dashboard with datasource variable and __inputs`, () => {
    const d = load(file);
    assert.ok(d.uid && d.title && d.description);
    assert.equal(d.id, null);
    assert.equal(d.__inputs[0]?.type, 'datasource');
    const ds = d.templating.list.find((v) => v.type === 'datasource');
    assert.equal(ds?.name, 'datasource');
    assert.equal(ds?.query, 'prometheus');
    for (const v of d.templating.list.filter((x) => x.type === 'query')) assert.equal(v.datasource?.uid, '${datasource}', v.name);
  });

  test(`${file}: unique ids, non-overlapping grid, unit and description on every panel`, () => {
    const d = load(file);
    const ids = d.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'duplicate panel ids');
    const cells = new Map<string, string>();
    for (const p of d.panels) {
      const { x, y, w, h } = p.gridPos;
      assert.ok(x >= 0 && w > 0 && x + w <= 24 && h > 0, `${p.title}: gridPos ${JSON.stringify(p.gridPos)}`);
      for (let i = x; i < x + w; i++)
        for (let j = y; j < y + h; j++) {
          const other = cells.get(`${i},${j}`);
          assert.equal(other, undefined, `${p.title} overlaps ${other}`);
          cells.set(`${i},${j}`, p.title);
        }
      if (p.type === 'row') continue;
      assert.ok(p.description && p.description.length > 20, `${p.title}: description`);
      assert.ok(p.fieldConfig?.defaults.unit, `${p.title}: unit`);
      assert.equal(p.datasource?.uid, '${datasource}', `${p.title}: datasource`);
      assert.ok((p.targets ?? []).length > 0, `${p.title}: no query`);
      for (const t of p.targets ?? []) assert.equal(t.datasource.uid, '${datasource}');
    }
    const titles = d.panels.filter((p: Panel) => p.type !== 'row').map((p) => p.title);
    assert.equal(new Set(titles).size, titles.length, 'duplicate panel titles');
  });

  test(`${file}: every query parses as PromQL after variable substitution`, () => {
    for (const q of dashboardQueries(load(file))) {
      const expr = substituteVariables(q.expr);
      assert.doesNotMatch(expr, /\$/, `${q.where}: unsubstituted variable`);
      assert.deepEqual(promqlErrors(expr), [], `${q.where}: ${expr}`);
    }
  });

  test(`${file}: every metric used is published in docs/metrics.md`, () => {
    const documented = documentedMetrics(readRepoFile('docs/metrics.md'));
    const missing = new Set<string>();
    for (const q of dashboardQueries(load(file))) for (const m of metricNames(substituteVariables(q.expr))) if (!documented.has(m)) missing.add(`${m} (${q.where})`);
    assert.deepEqual([...missing], [], 'metrics used by the dashboard but missing from docs/metrics.md');
  });
}

test('the service dashboard covers the issue\'s panels and the server dashboard its own', () => {
  const titles = (f: string) => load(f).panels.map((p) => p.title);
  const service = titles(SERVICE_DASHBOARD_PATH);
  for (const t of ['Connections by state vs max', 'Who holds the pool', 'Exhaustion reports', 'Waiting requests', 'Wait time percentiles', 'Wait time heatmap', 'Hold time percentiles', 'Checkout timeouts', 'Leaked checkouts', 'Oldest checkout age', 'Released inside a transaction', 'Connections closed by reason', 'Connection errors by type', 'Query rate by operation', 'Query duration percentiles by operation', 'Query errors by operation'])
    assert.ok(service.includes(t), t);
  const server = titles(SERVER_DASHBOARD_PATH);
  for (const t of ['Server connections by state vs usable limit', 'Headroom', 'Pool maxima by service vs usable limit', 'Connections held by service', 'Connections held by instance', 'Oldest idle-in-transaction age'])
    assert.ok(server.includes(t), t);
});

test('runbooks only point at panels and rows that exist', () => {
  const all = new Set(files.flatMap((f) => load(f).panels.map((p) => p.title)));
  const md = readRepoFile('docs/runbooks.md');
  const headings = new Set(['Severity:', 'Confirm', 'Usual causes', 'Fix']);
  for (const [, title] of md.matchAll(/\*\*([^*]+)\*\*/g)) {
    if (!headings.has(title as string)) assert.ok(all.has(title as string), `runbooks refer to missing panel "${title}"`);
  }
});
