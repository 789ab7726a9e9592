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
  assert.throws(() => resolveConfig({ runbookBaseUrl: 'wiki/runbooks' }), /runbookBaseUrl must be an http\(s\) URL/);
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
    assert.ok(rule.annotations.runbook_url?.startsWith('https://git.example.com/ops/runbooks/docs/runbooks.md#'), rule.annotations.runbook_url);
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

test('without runbookBaseUrl the output holds no address the user did not give: no runbook_url, first steps inline', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-pool-otel-gen-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const grafanaUrl = 'https://grafana.internal.example';
  writeFileSync(join(dir, 'my.json'), JSON.stringify({ grafanaUrl }));
  const r = cli('generate', '--config', join(dir, 'my.json'), '--out', dir);
  assert.equal(r.status, 0, r.stderr);
  const rulesText = readFileSync(join(dir, RULES_PATH), 'utf8');
  assert.doesNotMatch(rulesText, /runbook_url/);
  for (const rule of (parse(rulesText) as RuleFile).groups.flatMap((g) => g.rules)) {
    assert.match(rule.annotations.first_steps, /^Confirm:\n1\. [\s\S]*\nFix:\n1\. /, rule.alert);
    assert.ok(rule.annotations.dashboard_url?.startsWith(`${grafanaUrl}/d/`), rule.alert);
  }
  // Every address in every generated file is the user's own.
  for (const path of [RULES_PATH, SERVICE_DASHBOARD_PATH, SERVER_DASHBOARD_PATH, 'docs/runbooks.md']) {
    const urls = readFileSync(join(dir, path), 'utf8').match(/[a-z][a-z0-9+.-]*:\/\/[^\s"'`)<>]+/gi) ?? [];
    const foreign = urls.filter((u) => !u.startsWith(`${grafanaUrl}/`));
    assert.deepEqual(foreign, [], `${path} holds addresses the user did not give`);
  }
});

test('the CLI prints the default config', () => {
  const config = cli('config');
  assert.equal(config.status, 0);
  assert.deepEqual(JSON.parse(config.stdout), DEFAULT_CONFIG);
});

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

test('--help and -h print usage on stdout and exit 0, for the command and each subcommand', () => {
  const cases: [string[], RegExp][] = [
    [['--help'], /^Usage: pg-pool-otel <command>[\s\S]*generate[\s\S]*config/],
    [['-h'], /^Usage: pg-pool-otel <command>/],
    [['generate', '--help'], /^Usage: pg-pool-otel generate \[--config <file.json>\] \[--out <dir>\]/],
    [['generate', '-h'], /^Usage: pg-pool-otel generate /],
    [['generate', '--out', '/nonexistent/never-written', '--help'], /^Usage: pg-pool-otel generate /],
    [['config', '--help'], /^Usage: pg-pool-otel config\n/],
    [['config', '-h'], /^Usage: pg-pool-otel config\n/],
  ];
  for (const [args, usage] of cases) {
    const r = cli(...args);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, usage, args.join(' '));
    assert.equal(r.stderr, '', args.join(' '));
  }
  assert.ok(!existsSync('/nonexistent/never-written'));
});

test('--version and -v print the package version', () => {
  for (const flag of ['--version', '-v']) {
    const r = cli(flag);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, `${VERSION}\n`);
  }
});

test('a wrong argument exits 2 with one line naming it, then the usage, on stderr', () => {
  const cases: [string[], string, RegExp][] = [
    [[], 'pg-pool-otel: missing command', /^Usage: pg-pool-otel <command>/],
    [['genrate'], "pg-pool-otel: Unknown command 'genrate'", /^Usage: pg-pool-otel <command>/],
    [['--nope'], "pg-pool-otel: Unknown option '--nope'", /^Usage: pg-pool-otel <command>/],
    [['generate', '--nope'], "pg-pool-otel: Unknown option '--nope'", /^Usage: pg-pool-otel generate /],
    [['generate', '--config'], "pg-pool-otel: Option '--config <value>' argument missing", /^Usage: pg-pool-otel generate /],
    [['generate', 'out'], "pg-pool-otel: Unexpected argument 'out'", /^Usage: pg-pool-otel generate /],
    [['config', '--out', 'x'], "pg-pool-otel: Unknown option '--out'", /^Usage: pg-pool-otel config\n/],
  ];
  for (const [args, line, usage] of cases) {
    const r = cli(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '', args.join(' '));
    const [first, blank, ...rest] = r.stderr.split('\n');
    assert.equal(first, line);
    assert.equal(blank, '');
    assert.match(rest.join('\n'), usage);
  }
});

test('a config that cannot be used exits 1 with one line', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-pool-otel-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ selecter: 'x' }));
  const r = cli('generate', '--config', join(dir, 'bad.json'), '--out', dir);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^pg-pool-otel: config: unknown key "selecter" .*\n$/);
  assert.ok(!existsSync(join(dir, 'alerts')));
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
