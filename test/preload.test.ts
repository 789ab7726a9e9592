// The preload lines from the README, against a real server: a CommonJS app and an ESM app expose
// every core metric of docs/metrics.md on /metrics under the documented Prometheus names.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { usePostgres } from './support/server';
import { freePort } from '../tools/embedded-postgres';
import { startApp, scrape, sampleNames } from './support/child';
import { documentedMetrics } from './support/metrics-doc';

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
