// The leak fixture app under the real preload (dist/register.js; run `npm run build` first):
// three leaks in three files and a long-lived LISTEN client. The report names exactly the
// three sites and not the listener; the gauges show 3; releasing one updates them and prints
// the "returned" line.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { usePostgres } from './support/server';
import { eventually } from './support/telemetry';
import { freePort } from '../tools/embedded-postgres';
import { siteOf } from './fixtures/leaks/capture';

const ROOT = join(__dirname, '..');
const PRELOAD = join(ROOT, 'dist', 'register.js');
const FIXTURE = join(__dirname, 'fixtures', 'leaks');
const server = usePostgres();

interface Running {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
}

function run(script: string, env: Record<string, string>): Running {
  if (!existsSync(PRELOAD)) throw new Error(`${PRELOAD} is missing: run \`npm run build\` before this test`);
  const child = spawn(process.execPath, ['--require', PRELOAD, join(FIXTURE, script)], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: server.current.url, OTEL_METRICS_EXPORTER: 'none', ...env },
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  return { child, stdout: () => out, stderr: () => err };
}

/** Leak reports in stderr: the WARN line and its frames, one string each. */
function leakReports(stderr: string): string[] {
  return stderr
    .split(/\n(?=\[pg-pool-otel\])/)
    .filter((block) => block.includes('WARN possible connection leak'));
}

/** The value of a Prometheus series whose name and labels match. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').pop());
  }
  return undefined;
}

describe('leak fixture app under the preload', () => {
  let app: Running;
  let port: number;
  const metrics = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const fixture = { db_client_connection_pool_name: 'fixture' };

  before(async () => {
    port = await freePort();
    app = run('app.js', {
      OTEL_METRICS_EXPORTER: 'prometheus',
      OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
      OTEL_EXPORTER_PROMETHEUS_PORT: String(port),
      PG_POOL_OTEL_LEAK_THRESHOLD_MS: '300',
      PG_POOL_OTEL_LEAK_CHECK_INTERVAL_MS: '50',
    });
  });
  after(() => {
    if (app.child.exitCode === null) app.child.kill();
  });

  it('reports exactly the three leak sites, not the long-lived LISTEN client, and the gauges show 3', async () => {
    await eventually(() => app.stdout().includes('ready\n'), 10_000, `fixture ready; stderr: ${app.stderr()}`);
    await eventually(() => leakReports(app.stderr()).length >= 3, 5000, 'three leak reports');
    const reports = leakReports(app.stderr());
    assert.equal(reports.length, 3, app.stderr());
    const firstFrames = reports.map((r) => /\n {4}at .*?\(?(\/[^()\s]+:\d+:\d+)\)?$/m.exec(r)?.[1]).sort();
    const expected = ['invoices', 'orders', 'users'].map((f) => siteOf(join(FIXTURE, `${f}.js`), f)).sort();
    assert.deepEqual(
      firstFrames.map((f) => f?.replace(/\d+$/, '')),
      expected,
      `each report's first frame is its leak site:\n${reports.join('\n')}`
    );
    for (const r of reports) assert.match(r, /pool "fixture" checkout held for \d+\.\d s without release \(threshold 0\.3 s\)/);
    assert.ok(!app.stderr().includes('listener.js'), 'the long-lived LISTEN client is never reported');
    assert.ok(!/node_modules|dist\/pool|node:internal/.test(reports.join('\n')), 'library frames removed');

    const text = await metrics();
    assert.equal(sample(text, 'pg_pool_checkout_leaked', fixture), 3, text);
    assert.equal(sample(text, 'pg_pool_checkout_leak_detections_total', fixture), 3);
    assert.ok(sample(text, 'pg_pool_checkout_oldest_age', fixture)! >= 0.3);
    assert.equal(sample(text, 'pg_pool_pools', {}), 1);
  });

  it('releasing one leak prints the "returned" line and updates the gauges', async () => {
    app.child.stdin.write('release orders\n');
    await eventually(() => app.stderr().includes('previously reported checkout returned'), 3000, 'returned line');
    assert.match(
      app.stderr(),
      /INFO previously reported checkout returned after \d+\.\d s: pool "fixture" taken at \/.*orders\.js:\d+:\d+\n/
    );
    const text = await metrics();
    assert.equal(sample(text, 'pg_pool_checkout_leaked', fixture), 2);
    assert.equal(sample(text, 'pg_pool_checkout_leak_returns_total', fixture), 1);
    assert.equal(sample(text, 'pg_pool_checkout_leak_detections_total', fixture), 3);
    app.child.stdin.write('exit\n');
    await new Promise((resolve) => app.child.once('exit', resolve));
  });
});

describe('the test-suite leak check (pg-pool-otel/testing) under the preload, in a node:test suite', () => {
  it('fails the suite naming the line of a leaked checkout', async () => {
    const suite = run('suite.js', { LEAK: '1' });
    const code = await new Promise((resolve) => suite.child.once('exit', resolve));
    const output = suite.stdout() + suite.stderr();
    assert.notEqual(code, 0, output);
    assert.match(output, /1 pool checkout was never released:/);
    assert.ok(output.includes(siteOf(join(FIXTURE, 'suite.js'), 'suite')), output);
  });

  it('passes when every checkout was released', async () => {
    const suite = run('suite.js', { LEAK: '0' });
    const code = await new Promise((resolve) => suite.child.once('exit', resolve));
    assert.equal(code, 0, suite.stdout() + suite.stderr());
  });
});
