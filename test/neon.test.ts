// @neondatabase/serverless under the preload (dist/register.js; run `npm run build` first), against
// the embedded PostgreSQL through a local WebSocket-to-TCP bridge and a stand-in for Neon's HTTP
// endpoint (test/support/neon-proxy.ts). Its Pool and Client are node-postgres classes from a copy
// of pg bundled inside the driver, so the hook on `pg` never sees them: they are found through the
// driver's own exports. The app's results are the same as bare; its pool gets pool metrics, its
// leak is named at the app's line, its server is sampled, and each neon() HTTP query gets a span
// and a duration.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { usePostgres } from './support/server';
import { startApp, scrape, type RunningApp } from './support/child';
import { startHttpReceiver, type Receiver, type ReceivedSpan } from './support/otlp-receiver';
import { startNeonProxy, type NeonProxy } from './support/neon-proxy';
import { eventually } from './support/telemetry';
import { freePort } from '../tools/embedded-postgres';

const ROOT = join(__dirname, '..');
const PRELOAD = join(ROOT, 'dist', 'register.js');
const ESM_PRELOAD = join(ROOT, 'dist', 'register.mjs');
const FIXTURE = join(__dirname, 'fixtures', 'neon');
const LEAK_LINE = readFileSync(join(FIXTURE, 'scenario.cjs'), 'utf8').split('\n').findIndex((l) => l.includes('// LEAK SITE')) + 1;
const server = usePostgres();
let proxy: NeonProxy;
let receiver: Receiver;

after(async () => {
  await proxy?.close();
  await receiver?.close();
});

interface Run {
  app: RunningApp;
  results: unknown;
  metricsPort: number;
}

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const metricsPort = await freePort();
  const app = startApp(args, {
    DATABASE_URL: server.current.url,
    NEON_FETCH_ENDPOINT: proxy.fetchEndpoint,
    OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
    OTEL_EXPORTER_PROMETHEUS_PORT: String(metricsPort),
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: '100',
    OTEL_SERVICE_NAME: 'neon-app',
    PG_POOL_OTEL_LEAK_THRESHOLD_MS: '500',
    PG_POOL_OTEL_LEAK_CHECK_INTERVAL_MS: '100',
    PG_POOL_OTEL_SERVER_SAMPLE_INTERVAL_MS: '200',
    ...env,
  }, FIXTURE);
  app.child.stdin!.on('error', () => {});
  await app.waitFor('ready', 30_000);
  const results = JSON.parse(app.stdout().split('\n')[0]!) as unknown;
  return { app, results, metricsPort };
}

async function stop(app: RunningApp): Promise<void> {
  app.child.stdin!.end();
  const { code } = await app.exited;
  assert.equal(code, 0, app.stderr());
}

function sample(page: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of page.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    // A failed query's series is its own: asked for only by its error type.
    if (labels.error_type === undefined && line.includes('error_type=')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').pop());
  }
  return undefined;
}

function spans(from: number): ReceivedSpan[] {
  return receiver.exports.slice(from).filter((e) => e.signal === 'traces' && e.service === 'neon-app').flatMap((e) => e.spans);
}

describe('@neondatabase/serverless', () => {
  let bare: unknown;

  before(async () => {
    proxy = await startNeonProxy(server.current.port);
    receiver = await startHttpReceiver();
    const c = new Client({ connectionString: server.current.url });
    await c.connect();
    await c.query(`CREATE TABLE neon_pool_t (n int); INSERT INTO neon_pool_t VALUES (1), (2), (3);
      CREATE TABLE neon_client_t (n int); INSERT INTO neon_client_t VALUES (7);
      CREATE TABLE neon_http_t (n int); INSERT INTO neon_http_t VALUES (1), (2)`);
    await c.end();

    const r = await run([join(FIXTURE, 'app.cjs')], { NEON_WS_PROXY: proxy.wsProxyUrl });
    bare = r.results;
    await stop(r.app);
    assert.equal(r.app.stderr(), '', 'the bare app writes nothing to stderr');
  });

  it('bare, the scenario reaches PostgreSQL through the bridge and the HTTP stand-in', () => {
    const r = bare as Record<string, unknown>;
    assert.deepEqual(r.poolQuery, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    assert.deepEqual(r.client, [{ n: 7 }]);
    assert.deepEqual(r.httpTemplate, [{ n: 1, t: 'x' }, { n: 2, t: 'x' }]);
    assert.deepEqual(r.httpQuery, [{ n: 2 }]);
    assert.equal((r.httpError as { code: string }).code, '22012');
    assert.equal((r.poolError as { code: string }).code, '22012');
    assert.deepEqual(r.poolViaFetch, { rows: [{ n: 3 }], viaNeonFetch: true });
  });

  for (const [entry, args] of [
    ['require (index.js) under --require', ['--require', PRELOAD, join(FIXTURE, 'app.cjs')]],
    ['import (index.mjs) under --import', ['--import', ESM_PRELOAD, join(FIXTURE, 'app.mjs')]],
  ] as const) {
    it(`${entry}: same results, pool metrics and a server sample, the leak at the app's line, a span and a duration per neon() query`, async () => {
      const before = receiver.exports.length;
      const r = await run([...args], { NEON_WS_PROXY: proxy.wsProxyUrl });
      try {
        assert.deepEqual(r.results, bare, 'the app gets exactly what it gets bare');

        // Pool metrics of the driver's Pool, named by its application_name.
        const pool = { db_client_connection_pool_name: 'neon-app' };
        let page = '';
        await eventually(async () => {
          page = await scrape(r.metricsPort);
          return sample(page, 'pg_pool_checkout_leaked', pool) === 1;
        }, 10_000, 'the leaked checkout on /metrics');
        // Server headroom: sampled on an idle connection of the driver's pool, as on a pg.Pool's.
        await eventually(async () => {
          page = await scrape(r.metricsPort);
          return sample(page, 'pg_pool_server_max_connections', { server_address: '127.0.0.1' }) === 30;
        }, 10_000, 'the server sample');
        assert.equal(sample(page, 'db_client_connection_max', pool), 3);
        assert.equal(sample(page, 'db_client_connection_count', { ...pool, db_client_connection_state: 'used' }), 1);
        assert.equal(sample(page, 'db_client_connection_wait_time_count', pool), 8, 'two pool.query(), five connect(), the leak');
        // The release inside a transaction: the driver's bundled pg has no getTransactionStatus().
        assert.equal(sample(page, 'pg_pool_checkout_released_in_transaction_total', { ...pool, transaction_status: 'in_transaction' }), 1);
        assert.equal(sample(page, 'db_client_operation_duration_count', { ...pool, db_collection_name: 'neon_pool_t' }), 2);
        // The bare Client: its query and its connection.
        assert.equal(sample(page, 'db_client_operation_duration_count', { db_collection_name: 'neon_client_t' }), 1);
        // neon() over HTTP: two queries, one failure, on the server of the connection string.
        const http = { db_collection_name: 'neon_http_t', server_address: '127.0.0.1', server_port: String(server.current.port) };
        assert.equal(sample(page, 'db_client_operation_duration_count', { ...http, db_operation_name: 'SELECT' }), 2);
        assert.equal(sample(page, 'db_client_operation_duration_count', { ...http, error_type: '22012' }), 1);
        assert.doesNotMatch(
          page.split('\n').filter((l) => l.includes('neon_http_t')).join('\n'),
          /db_client_connection_pool_name/,
          'neon() HTTP queries have no pool'
        );

        // The leak report names the app's line.
        await eventually(() => r.app.stderr().includes('possible connection leak'), 5000, 'the leak report');
        const report = r.app.stderr().split(/\n(?=\[pg-pool-otel\])/).find((b) => b.includes('possible connection leak'))!;
        assert.match(report, /pool "neon-app"/);
        assert.ok(report.includes(`scenario.cjs:${LEAK_LINE}:`), report);

        // Spans: one per neon() HTTP query, with its summary, server and error type.
        const mine = () => spans(before).filter((s) => s.attributes['db.collection.name'] === 'neon_http_t');
        await eventually(() => mine().length >= 3, 10_000, 'neon() spans');
        const httpSpans = mine();
        assert.equal(httpSpans.length, 3);
        assert.deepEqual(httpSpans.map((s) => s.name).sort(), ['SELECT neon_http_t', 'SELECT neon_http_t', 'SELECT neon_http_t']);
        for (const s of httpSpans) {
          assert.equal(s.attributes['server.address'], '127.0.0.1');
          assert.equal(s.attributes['db.system.name'], 'postgresql');
          assert.equal(s.attributes['db.client.connection.pool.name'], undefined);
        }
        assert.equal(httpSpans.filter((s) => s.attributes['error.type'] === '22012').length, 1);
        assert.ok(
          httpSpans.some((s) => s.attributes['db.query.text'] === 'SELECT n, $1::text AS t FROM neon_http_t WHERE n > $2 ORDER BY n'),
          'the tagged template as the text neon sends'
        );
      } finally {
        r.app.kill();
      }
    });
  }
});
