// The committed rule file and Alertmanager example, checked by the real tools: promtool check and
// unit tests (alerts/tests/*.yml), amtool check-config and routing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { parse } from 'yaml';
import { readRepoFile, requireTool, runTool } from './support/prometheus';
import { RULES_PATH } from '../src/cli/generate';
import type { RuleFile } from '../src/cli/alerts';

const TESTS_DIR = 'alerts/tests';
const testFiles = readdirSync(`${__dirname}/../${TESTS_DIR}`).filter((f) => f.endsWith('.yml')).map((f) => `${TESTS_DIR}/${f}`);

test('promtool check rules accepts the generated rule file', (t) => {
  const promtool = requireTool(t, 'promtool');
  if (!promtool) return;
  const r = runTool(promtool, ['check', 'rules', RULES_PATH]);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /SUCCESS/);
});

test('promtool unit tests pass', (t) => {
  const promtool = requireTool(t, 'promtool');
  if (!promtool) return;
  const r = runTool(promtool, ['test', 'rules', ...testFiles]);
  assert.equal(r.code, 0, r.output);
});

interface AlertRuleTest {
  alertname: string;
  exp_alerts?: { exp_labels?: Record<string, string>; exp_annotations?: Record<string, string> }[];
}

test('every alert has a firing case with labels and annotations, and a must-not-fire case', () => {
  const rules = (parse(readRepoFile(RULES_PATH)) as RuleFile).groups.flatMap((g) => g.rules);
  const cases: AlertRuleTest[] = testFiles.flatMap((f) =>
    ((parse(readRepoFile(f)) as { tests: { alert_rule_test?: AlertRuleTest[] }[] }).tests ?? []).flatMap((x) => x.alert_rule_test ?? [])
  );
  for (const rule of rules) {
    const mine = cases.filter((c) => c.alertname === rule.alert);
    const firing = mine.flatMap((c) => c.exp_alerts ?? []).filter((a) => a.exp_labels?.severity === rule.labels.severity);
    assert.ok(firing.length > 0, `${rule.alert} (${rule.labels.severity}) has no firing case`);
    for (const a of firing) {
      for (const key of ['summary', 'description', 'first_steps']) assert.ok(a.exp_annotations?.[key], `${rule.alert}: firing case without ${key}`);
    }
    assert.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${rule.alert} has no must-not-fire case`);
  }
});

test('amtool accepts the Alertmanager example and routes by severity', (t) => {
  const amtool = requireTool(t, 'amtool');
  if (!amtool) return;
  const file = 'alerts/alertmanager.example.yml';
  const check = runTool(amtool, ['check-config', file]);
  assert.equal(check.code, 0, check.output);
  const route = (...labels: string[]) => runTool(amtool, ['config', 'routes', 'test', `--config.file=${file}`, ...labels]).output.trim().split('\n').filter((l) => !l.startsWith('Warning')).join('\n');
  assert.equal(route('alertname=PgPoolServerRefusingConnections', 'severity=critical'), 'pager');
  assert.equal(route('alertname=PgPoolSaturated', 'severity=warning', 'job=api'), 'tickets');
  assert.equal(route('alertname=PgPoolConnectionChurn', 'severity=info'), 'chat');
});

test('the Alertmanager example inhibits pool alerts while their server refuses connections', () => {
  const am = parse(readRepoFile('alerts/alertmanager.example.yml')) as {
    route: { group_by: string[] };
    inhibit_rules: { source_matchers: string[]; target_matchers: string[]; equal: string[] }[];
  };
  for (const l of ['job', 'db_client_connection_pool_name', 'server_address', 'server_port']) assert.ok(am.route.group_by.includes(l), `group_by lacks ${l}`);
  const rule = am.inhibit_rules.find((r) => r.source_matchers.some((m) => m.includes('PgPoolServerRefusingConnections')));
  assert.ok(rule, 'no inhibition from PgPoolServerRefusingConnections');
  const target = new RegExp(`^${/"(.*)"/.exec(rule.target_matchers.join(''))?.[1] ?? 'x^'}$`);
  for (const name of ['PgPoolSaturated', 'PgPoolAcquireTimeouts', 'PgPoolRequestsQueued']) assert.match(name, target);
  assert.deepEqual(rule.equal, ['server_address', 'server_port']);
});
