// examples/knex-service under the preload, scraped by a real Prometheus: every pool query of the
// generated service dashboard, unchanged, finds the Knex pool's series (same metric names and
// labels as a pg.Pool's), and the planted leak is reported at the service's own line.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { freePort } from '../tools/embedded-postgres';
import { usePostgres } from './support/server';
import { startApp, type RunningApp } from './support/child';
import { instantQuery, readRepoFile, requireTool, startPrometheus, substituteVariables, type PrometheusServer } from './support/prometheus';
import { SERVICE_DASHBOARD_PATH } from '../src/cli/generate';
import type { Dashboard } from '../src/cli/dashboards/model';
import { eventually } from './support/telemetry';

const server = usePostgres();
const SERVICE = join(__dirname, '..', 'examples', 'knex-service', 'server.js');
// Series that appear with their first event, for any pool: not exercised by this service.
const EVENT_PANELS = ['Connection errors by type', 'Released inside a transaction', 'Exhaustion reports'];

describe('examples/knex-service on the service dashboard', { timeout: 90_000 }, () => {
  let app: RunningApp | undefined;
  let prom: PrometheusServer | undefined;
  let appPort = 0;
  let metricsPort = 0;
  after(async () => {
    app?.kill();
    await prom?.stop();
  });

  before(async () => {
    [appPort, metricsPort] = [await freePort(), await freePort()];
    app = startApp(['--require', './dist/register.js', SERVICE], {
      DATABASE_URL: server.current.url,
      PORT: String(appPort),
      OTEL_SERVICE_NAME: 'knex-service',
      OTEL_EXPORTER_PROMETHEUS_PORT: String(metricsPort),
      PG_POOL_OTEL_LEAK_THRESHOLD_MS: '1000', // above the slow report's 0.5 s
      PG_POOL_OTEL_LEAK_CHECK_INTERVAL_MS: '50',
    });
    await app.waitFor('knex-service listening');
  });

  const call = (method: string, path: string, body?: object) =>
    fetch(`http://127.0.0.1:${appPort}${path}`, { method, body: body ? JSON.stringify(body) : undefined }).then((r) => r.status);

  it("answers every pool query of the dashboard for the Knex pool, and reports the leak at the service's line", async (t) => {
    const binary = requireTool(t, 'prometheus');
    if (!binary) return;
    assert.equal(await call('GET', '/products'), 200);
    await Promise.all([call('GET', '/reports/slow'), call('GET', '/reports/slow'), call('GET', '/products')]);
    assert.equal(await call('GET', '/reports/broken'), 500);
    assert.equal(await call('POST', '/orders', { sku: 'nope' }), 200); // leaks its transaction
    const line = readFileSync(SERVICE, 'utf8').split('\n').findIndex((l) => l.includes('await db.transaction()')) + 1;
    const report = new RegExp(`possible connection leak: pool "knex-service"[^\n]*\n\\s+at .*examples/knex-service/server\\.js:${line}:`);
    await eventually(() => report.test(app!.stderr()), 5000, `leak report at server.js:${line}`);
    assert.equal(app!.stderr().match(/possible connection leak/g)?.length, 1, app!.stderr());

    prom = await startPrometheus({ binary, port: await freePort(), targets: [`127.0.0.1:${metricsPort}`], rules: 'groups: []\n', scrapeInterval: '500ms' });
    const dashboard = JSON.parse(readRepoFile(SERVICE_DASHBOARD_PATH)) as Dashboard;
    const queries = dashboard.panels
      .filter((p) => !EVENT_PANELS.includes(p.title))
      .flatMap((p) => (p.targets ?? []).map((q) => ({ where: `${p.title} ${q.refId}`, expr: substituteVariables(q.expr, { __rate_interval: '5s', pool: 'knex-service' }) })));
    assert.ok(queries.length >= 15, `${queries.length} queries`);
    const empty = new Set(queries.map((q) => q.where));
    const deadline = Date.now() + 30_000;
    while (empty.size && Date.now() < deadline) {
      for (const q of queries) if (empty.has(q.where) && (await instantQuery(prom.url, q.expr)).length > 0) empty.delete(q.where);
      if (empty.size) await new Promise((r) => setTimeout(r, 1000));
    }
    assert.deepEqual([...empty], [], 'dashboard queries with no data for pool "knex-service"');
    const [used] = await instantQuery(prom.url, 'db_client_connection_count{db_client_connection_pool_name="knex-service",db_client_connection_state="used"}');
    assert.equal(used?.value[1], '1', 'the leaked transaction holds one connection');
  });
});
