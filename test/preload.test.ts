// The preload lines from the README, against a real server: a CommonJS app, an ESM app and a
// TypeScript app started through tsx expose every core metric of docs/metrics.md on /metrics under
// the documented Prometheus names, and a worker thread's pools are served on the same endpoint.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { usePostgres } from './support/server';
import { freePort } from '../tools/embedded-postgres';
import { startApp, scrape, sampleNames } from './support/child';
import { eventually } from './support/telemetry';
import { documentedMetrics } from './support/metrics-doc';
import { spawnSync } from 'node:child_process';
import { which } from './support/prometheus';

const server = usePostgres();
const CORE_SECTIONS = ['Pool connections', 'Queries'];

async function runFixture(args: string[]) {
  const port = await freePort();
  const app = startApp(args, {
    DATABASE_URL: server.current.url,
    OTEL_EXPORTER_PROMETHEUS_PORT: String(port),
    OTEL_SERVICE_NAME: 'fixture-service',
    PG_POOL_OTEL_LEAK_THRESHOLD_MS: '0',
  });
  try {
    await app.waitFor('READY');
    const page = await scrape(port);
    app.child.stdin!.end('go\n');
    await app.waitFor('DONE');
    const { code } = await app.exited;
    assert.equal(code, 0, app.stderr());
    return { page, stderr: app.stderr() };
  } finally {
    app.kill();
  }
}

function assertCoreMetrics(page: string) {
  const names = sampleNames(page);
  for (const m of documentedMetrics().filter((d) => CORE_SECTIONS.includes(d.section))) {
    for (const n of m.prometheusNames) assert.ok(names.has(n), `${n} (${m.otelName}) missing from /metrics`);
  }
  const expect = (re: RegExp) => assert.ok(re.test(page), `/metrics has no line matching ${re}`);
  expect(/target_info\{[^}]*service_name="fixture-service"/);
  expect(/db_client_connection_count\{[^}]*db_client_connection_pool_name="fixture"[^}]*db_client_connection_state="used"[^}]*\} 2\n/);
  expect(/db_client_connection_count\{[^}]*db_client_connection_pool_name="fixture"[^}]*db_client_connection_state="idle"[^}]*\} 0\n/);
  expect(/db_client_connection_pending_requests\{[^}]*db_client_connection_pool_name="fixture"[^}]*\} 1\n/);
  expect(/pg_pool_connection_errors_total\{[^}]*error_type="28P01"/);
  expect(/pg_pool_connection_closed_total\{[^}]*reason="idle_timeout"/);
  expect(/db_client_connection_timeouts_total\{[^}]*db_client_connection_pool_name="fixture"[^}]*\} 1\n/);
}

describe('preload', { timeout: 120_000 }, () => {
  it('--require: a CommonJS app serves every documented core metric', async () => {
    const { page, stderr } = await runFixture(['--require', './dist/register.js', 'test/fixtures/preload/app.cjs']);
    assertCoreMetrics(page);
    assert.doesNotMatch(stderr, /internal error/);
  });

  it('--import: an ESM app serves every documented core metric', async () => {
    const { page, stderr } = await runFixture(['--import', './dist/register.mjs', 'test/fixtures/preload/app.mjs']);
    assertCoreMetrics(page);
    assert.doesNotMatch(stderr, /internal error/);
  });

  it('--require beside a module loader (--import tsx): nothing runs in the loader thread, metrics are served', async () => {
    const { page, stderr } = await runFixture(['--require', './dist/register.js', '--import', 'tsx', 'test/fixtures/preload/app.ts']);
    assertCoreMetrics(page);
    assert.doesNotMatch(stderr, /cannot serve Prometheus metrics|internal error/);
  });

  it("a worker thread's pool is served on the main thread's endpoint, told apart by thread.id, and goes with the worker", async () => {
    const port = await freePort();
    const app = startApp(['--require', './dist/register.js', 'test/fixtures/preload/worker-app.cjs'], {
      DATABASE_URL: server.current.url,
      OTEL_EXPORTER_PROMETHEUS_PORT: String(port),
      PG_POOL_OTEL_CONFIG_ADVICE: 'false',
    });
    try {
      await app.waitFor('READY');
      const thread = /READY (\d+)/.exec(app.stdout())![1];
      // The server is first sampled a moment after the first connection: scraped once it is.
      let page = '';
      await eventually(async () => (page = await scrape(port)).includes('pg_pool_server_max_connections{'), 3000, 'a server sample');
      const count = (state: string, worker: boolean) => {
        const line = page
          .split('\n')
          .find((l) => l.startsWith('db_client_connection_count{') && l.includes(`state="${state}"`) && l.includes(`thread_id="${thread}"`) === worker);
        assert.ok(line, `no ${state} count from the ${worker ? 'worker' : 'main'} thread in:\n${page}`);
        return { pool: /pool_name="([^"]*)"/.exec(line)![1], value: Number(line.split(' ').pop()) };
      };
      // The same pool options in both threads: the same pool name, told apart by thread_id.
      const [mainIdle, workerUsed] = [count('idle', false), count('used', true)];
      assert.equal(workerUsed.pool, mainIdle.pool);
      assert.deepEqual([mainIdle.value, workerUsed.value, count('used', false).value, count('idle', true).value], [1, 2, 0, 0]);
      assert.match(page, new RegExp(`db_client_connection_wait_time_count\\{[^}]*thread_id="${thread}"[^}]*\\} 3\n`));
      // One family per name, and facts about the server once, whichever thread sampled them.
      const types = page.split('\n').filter((l) => l.startsWith('# TYPE '));
      assert.equal(new Set(types).size, types.length, 'a metric family listed twice');
      const maxConnections = page.split('\n').filter((l) => l.startsWith('pg_pool_server_max_connections{'));
      assert.equal(maxConnections.length, 1, maxConnections.join('\n'));
      assert.doesNotMatch(maxConnections[0]!, /thread_id/);
      const promtool = which('promtool');
      if (promtool) assert.doesNotMatch(runToolOnStdin(promtool, page), /parsing error/);

      app.child.stdin!.write('stop-worker\n');
      await app.waitFor('WORKER GONE');
      const after = await scrape(port);
      assert.doesNotMatch(after, /thread_id=/, "the worker's series went with it");
      assert.match(after, /db_client_connection_count\{[^}]*state="idle"[^}]*\} 1\n/);
      app.child.stdin!.end('end\n');
      await app.waitFor('DONE');
      assert.equal((await app.exited).code, 0, app.stderr());
      assert.doesNotMatch(app.stderr(), /WARN|internal error/);
    } finally {
      app.kill();
    }
  });

  it('NODE_OPTIONS works too', async () => {
    const port = await freePort();
    const app = startApp(['test/fixtures/preload/app.cjs'], {
      DATABASE_URL: server.current.url,
      OTEL_EXPORTER_PROMETHEUS_PORT: String(port),
      NODE_OPTIONS: `--require ${process.cwd()}/dist/register.js`,
    });
    try {
      await app.waitFor('READY');
      assert.ok(sampleNames(await scrape(port)).has('db_client_connection_count'));
      app.child.stdin!.end('go\n');
      assert.equal((await app.exited).code, 0);
    } finally {
      app.kill();
    }
  });

  it('is one file at start-up: no other file of the package or of OpenTelemetry is loaded, also once pg is', () => {
    // The files the app has loaded once the preload ran, then once pg loaded the hooks: a cold
    // start pays for each (the OTLP exporters, loaded from node_modules when chosen, are not).
    const probe =
      'const ours = () => Object.keys(require.cache).filter((f) => f.includes("/dist/") || f.includes("/node_modules/")); ' +
      'const before = ours(); require("pg"); console.log(JSON.stringify({ before, after: ours() }));';
    const r = spawnSync(process.execPath, ['--require', './dist/register.js', '-e', probe], {
      encoding: 'utf8',
      env: { ...process.env, OTEL_EXPORTER_PROMETHEUS_PORT: '0' },
    });
    assert.equal(r.status, 0, r.stderr);
    const { before, after } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { before: string[]; after: string[] };
    // import-in-the-middle stays outside the bundle: its loader half (register.mjs) must share its module.
    const rel = (files: string[]) =>
      files.map((f) => f.slice(process.cwd().length + 1)).filter((f) => !/^node_modules\/(import-in-the-middle|module-details-from-path)\//.test(f));
    assert.deepEqual(rel(before), ['dist/register.js']);
    assert.ok(rel(after).some((f) => f.startsWith('node_modules/pg/')), 'pg loaded');
    assert.deepEqual(rel(after).filter((f) => f.startsWith('dist/') || f.includes('@opentelemetry')), ['dist/register.js']);
  });

  it('OTEL_SDK_DISABLED=true turns everything off', async () => {
    const port = await freePort();
    const app = startApp(['--require', './dist/register.js', 'test/fixtures/preload/app.cjs'], {
      DATABASE_URL: server.current.url,
      OTEL_EXPORTER_PROMETHEUS_PORT: String(port),
      OTEL_SDK_DISABLED: 'true',
    });
    try {
      await app.waitFor('READY');
      await assert.rejects(scrape(port));
      app.child.stdin!.end('go\n');
      assert.equal((await app.exited).code, 0);
    } finally {
      app.kill();
    }
  });
});

/** promtool check metrics reads the page on stdin. */
function runToolOnStdin(path: string, input: string): string {
  const r = spawnSync(path, ['check', 'metrics'], { input, encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`;
}
