// The generator: committed files equal what the source generates, and the CLI regenerates them
// with a user's own selector, thresholds and URLs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { DEFAULT_CONFIG, resolveConfig } from '../src/cli/config';
import { generateFiles, RULES_PATH, SERVICE_DASHBOARD_PATH, SERVER_DASHBOARD_PATH } from '../src/cli/generate';
import type { RuleFile } from '../src/cli/alerts';
import type { Dashboard } from '../src/cli/dashboards/model';
import { metricNames, promqlErrors, ROOT, runTool, substituteVariables, which } from './support/prometheus';

const CLI = join(ROOT, 'dist', 'cli', 'main.js');

test('committed alerts, dashboards and runbooks are what the generator produces (run `npm run generate`)', () => {
  for (const [path, content] of generateFiles(resolveConfig({}))) {
    assert.equal(readFileSync(join(ROOT, path), 'utf8'), content, `${path} is stale: run npm run generate`);
  }
});

test('config: defaults print, unknown keys and bad values are rejected', () => {
  assert.deepEqual(resolveConfig(JSON.parse(JSON.stringify(DEFAULT_CONFIG))), DEFAULT_CONFIG);
  assert.throws(() => resolveConfig({ selecter: 'x' }), /unknown key "selecter"/);
  assert.throws(() => resolveConfig({ thresholds: { queuedWindow: '10 minutes' } }), /not a Prometheus duration/);
  assert.throws(() => resolveConfig({ thresholds: { waitP95Seconds: '1' } }), /must be a number/);
  assert.throws(() => resolveConfig({ for: { PgPoolNope: '1m' } }), /unknown alert "PgPoolNope"/);
  assert.throws(() => resolveConfig({ disabled: ['PgPoolNope'] }), /unknown alert/);
});

test('the pg-pool-otel CLI regenerates everything with a user config', (t) => {
  assert.ok(existsSync(CLI), 'dist/cli/main.js missing: run npm run build');
  assert.match(readFileSync(CLI, 'utf8'), /^#!\/usr\/bin\/env node\n/);
  const dir = mkdtempSync(join(tmpdir(), 'pg-pool-otel-gen-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = {
    selector: 'job=~"checkout|billing", env="prod"',
    runbookBaseUrl: 'https://git.example.com/ops/runbooks/',
    grafanaUrl: 'https://grafana.example.com',
    thresholds: { serverWarningRatio: 0.7, queuedWindow: '15m' },
    for: { PgPoolSaturated: '10m' },
    disabled: ['PgPoolConnectionChurn'],
  };
  writeFileSync(join(dir, 'my.json'), JSON.stringify(config));
  const r = spawnSync(process.execPath, [CLI, 'generate', '--config', join(dir, 'my.json'), '--out', join(dir, 'out')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);

  const rules = (parse(readFileSync(join(dir, 'out', RULES_PATH), 'utf8')) as RuleFile).groups.flatMap((g) => g.rules);
  assert.ok(!rules.some((x) => x.alert === 'PgPoolConnectionChurn'));
  assert.equal(rules.find((x) => x.alert === 'PgPoolSaturated')?.for, '10m');
  assert.match(rules.find((x) => x.alert === 'PgPoolRequestsQueued')?.expr ?? '', /\[15m:\]/);
  assert.match(rules.find((x) => x.labels.severity === 'warning' && x.alert === 'PgPoolServerConnectionsNearLimit')?.expr ?? '', /> 0.7$/);
  for (const rule of rules) {
    assert.ok(rule.annotations.runbook_url.startsWith('https://git.example.com/ops/runbooks/docs/runbooks.md#'), rule.annotations.runbook_url);
    assert.ok(rule.annotations.dashboard_url?.startsWith('https://grafana.example.com/d/'));
    assertEverySelectorHas(rule.expr, rule.alert);
  }
  for (const f of [SERVICE_DASHBOARD_PATH, SERVER_DASHBOARD_PATH]) {
    const d = JSON.parse(readFileSync(join(dir, 'out', f), 'utf8')) as Dashboard;
    for (const p of d.panels) for (const target of p.targets ?? []) assertEverySelectorHas(substituteVariables(target.expr), p.title);
  }
  assert.ok(existsSync(join(dir, 'out', 'docs', 'runbooks.md')));
  const promtool = which('promtool');
  if (promtool) {
    const check = runTool(promtool, ['check', 'rules', join(dir, 'out', RULES_PATH)]);
    assert.equal(check.code, 0, check.output);
  }
});

test('the CLI prints the default config and fails on bad arguments', () => {
  const config = spawnSync(process.execPath, [CLI, 'config'], { encoding: 'utf8' });
  assert.equal(config.status, 0);
  assert.deepEqual(JSON.parse(config.stdout), DEFAULT_CONFIG);
  const bad = spawnSync(process.execPath, [CLI, 'generate', '--nope'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /unknown or incomplete argument/);
});

/** Each vector selector carries the user's matchers (checked by text: the selector is inside {}). */
function assertEverySelectorHas(expr: string, where: string): void {
  assert.deepEqual(promqlErrors(expr), [], where);
  // `up` only gates new-counter detection per target (`and on (job, instance)`): no selector needed.
  for (const m of metricNames(expr).filter((x) => x !== 'up')) {
    for (const occurrence of expr.split(new RegExp(`\\b${m}\\b`)).slice(1)) {
      assert.match(occurrence, /^\{[^}]*job=~"checkout\|billing", env="prod"/, `${where}: ${m} without the selector`);
    }
  }
}
