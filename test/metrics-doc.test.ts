// docs/metrics.md is the single list of metrics: everything it lists is served on /metrics
// under exactly that name, and everything this package serves is listed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { usePostgres } from './support/server';
import { freePort } from '../tools/embedded-postgres';
import { startApp, scrape, sampleNames } from './support/child';
import { documentedMetrics } from './support/metrics-doc';
import { startPgBouncer } from './support/pgbouncer';
import { METRICS, prometheusSamples } from '../src/telemetry/catalogue';

const server = usePostgres();

describe('docs/metrics.md', { timeout: 120_000 }, () => {
  it('lists every metric of the catalogue, under the same Prometheus names, and nothing else', () => {
    const documented = new Map(documentedMetrics().map((m) => [m.otelName, m]));
    for (const d of Object.values(METRICS)) {
      const doc = documented.get(d.name);
      assert.ok(doc, `${d.name} is not in docs/metrics.md`);
      assert.deepEqual(doc.prometheusNames, prometheusSamples(d), `${d.name}: Prometheus names`);
      assert.equal(doc.unit, d.unit, `${d.name}: unit`);
    }
    const catalogued = new Set(Object.values(METRICS).map((d) => d.name));
    for (const name of documented.keys()) assert.ok(catalogued.has(name), `${name} is documented but not in src/telemetry/catalogue.ts`);
  });

  it('matches what a real process serves, name for name', async (t) => {
    const port = await freePort();
    const bouncer = await startPgBouncer({ databases: { app: { server: server.current } } });
    t.after(() => bouncer.stop());
    const app = startApp(['--require', './dist/register.js', 'test/fixtures/preload/everything.cjs'], {
      DATABASE_URL: server.current.url,
      POOLER_URL: bouncer.url('app'),
      OTEL_EXPORTER_PROMETHEUS_PORT: String(port),
      PG_POOL_OTEL_LEAK_THRESHOLD_MS: '300',
      PG_POOL_OTEL_LEAK_CHECK_INTERVAL_MS: '100',
      PG_POOL_OTEL_SERVER_SAMPLE_INTERVAL_MS: '200',
      WAIT_MS: '1500',
    });
    try {
      await app.waitFor('READY', 30_000);
      const page = await scrape(port);
      app.child.stdin!.end('go\n');
      assert.equal((await app.exited).code, 0, app.stderr());
      const served = sampleNames(page);
      const documented = documentedMetrics();
      const documentedNames = new Set(documented.flatMap((m) => m.prometheusNames));
      for (const m of documented) {
        for (const n of m.prometheusNames) assert.ok(served.has(n), `${n} (${m.otelName}) is documented but not served`);
      }
      const ours = new Set<string>();
      for (const line of page.split('\n')) {
        const m = /^([a-z_:][a-z0-9_:]*)\{[^}]*otel_scope_name="pg-pool-otel"/.exec(line);
        if (m) ours.add(m[1]!);
      }
      assert.ok(ours.size > 20, `only ${ours.size} pg-pool-otel series served`);
      for (const n of ours) assert.ok(documentedNames.has(n), `${n} is served but not in docs/metrics.md`);
    } finally {
      app.kill();
    }
  });
});
