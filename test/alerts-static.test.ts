// Static checks of the generated rules: style (names, severities, annotations), PromQL syntax,
// runbook sections, and that every metric used is published in docs/metrics.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { documentedMetrics, metricNames, promqlErrors, readRepoFile } from './support/prometheus';
import { RULES_PATH, RUNBOOKS_PATH } from '../src/cli/generate';
import { ALERT_NAMES } from '../src/cli/config';
import type { RuleFile } from '../src/cli/alerts';

const rules = (parse(readRepoFile(RULES_PATH)) as RuleFile).groups.flatMap((g) => g.rules);

test('rules follow the mixin style', () => {
  assert.ok(rules.length >= ALERT_NAMES.length);
  for (const r of rules) {
    assert.match(r.alert, /^PgPool[A-Z][A-Za-z]+$/);
    assert.ok(['critical', 'warning', 'info'].includes(r.labels.severity), `${r.alert}: severity ${r.labels.severity}`);
    assert.ok(r.annotations.summary && r.annotations.description, `${r.alert}: summary/description`);
    assert.match(r.annotations.description, /\{\{ *\$(labels|value)/, `${r.alert}: description without labels or value`);
    // The shipped rules have no runbook address to point at (no base URL given): the first steps are inline.
    assert.equal(r.annotations.runbook_url, undefined, `${r.alert}: runbook_url without a runbookBaseUrl`);
    assert.match(r.annotations.first_steps, /^Confirm:\n1\. .+\n(\d\. .+\n)*Fix:\n1\. .+/, `${r.alert}: first_steps`);
    assert.deepEqual(promqlErrors(r.expr), [], `${r.alert}: ${r.expr}`);
  }
  const pool = rules.filter((r) => r.expr.includes('db_client_connection_pool_name'));
  for (const r of pool) assert.match(r.expr, /by \(job, instance, db_client_connection_pool_name, server_address, server_port/, r.alert);
});

test('docs/runbooks.md has a section per alert with meaning, confirm, causes and fix', () => {
  const md = readRepoFile(RUNBOOKS_PATH);
  for (const name of new Set(rules.map((r) => r.alert))) {
    const start = md.indexOf(`\n## ${name}\n`);
    assert.ok(start >= 0, `no runbook section for ${name}`);
    const next = md.indexOf('\n## ', start + 1);
    const section = md.slice(start, next < 0 ? undefined : next);
    for (const part of ['**Confirm**', '**Usual causes**', '**Fix**']) assert.ok(section.includes(part), `${name}: ${part}`);
  }
});

test('every metric the rules use is published in docs/metrics.md', () => {
  const documented = documentedMetrics(readRepoFile('docs/metrics.md'));
  const missing = new Set<string>();
  for (const r of rules) for (const m of metricNames(r.expr)) if (!documented.has(m)) missing.add(`${m} (${r.alert})`);
  assert.deepEqual([...missing], [], 'metrics used by rules but missing from docs/metrics.md');
});
