// A service bundled with esbuild, pg and pg-pool-otel inlined into one file (as serverless deploys
// do), run under the preload (dist/register.js; run `npm run build` first). The preload's require
// hook never sees a module named `pg`; instrumentPg(pg), called by the bundled copy of this
// package, finds the preload's instrumentation through its global registration and patches the
// inlined pg: pool metrics are served and a leak is named at the original TypeScript line with
// --enable-source-maps. Without a running instrumentation, instrumentPg says once what to do.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { usePostgres } from './support/server';
import { startApp, scrape, type RunningApp } from './support/child';
import { eventually } from './support/telemetry';
import { freePort } from '../tools/embedded-postgres';

const ROOT = join(__dirname, '..');
const PRELOAD = join(ROOT, 'dist', 'register.js');
const SOURCE = join(__dirname, 'fixtures', 'bundled', 'app.ts');
const LEAK_LINE = readFileSync(SOURCE, 'utf8').split('\n').findIndex((l) => l.includes('// LEAK SITE')) + 1;
const server = usePostgres();
let dir: string;
let bundle: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pg-pool-otel-bundle-'));
  bundle = join(dir, 'app.js');
  await build({
    entryPoints: [SOURCE],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: bundle,
    sourcemap: true,
    // pg's optional native binding is an addon: never inlined.
    external: ['pg-native'],
    // The published package, as an app's bundler would inline it.
    alias: { 'pg-pool-otel': join(ROOT, 'dist', 'index.js') },
    logLevel: 'error',
  });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function sample(page: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of page.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').pop());
  }
  return undefined;
}

async function start(args: string[]): Promise<{ app: RunningApp; port: number }> {
  const port = await freePort();
  const app = startApp(args, {
    DATABASE_URL: server.current.url,
    OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
    OTEL_EXPORTER_PROMETHEUS_PORT: String(port),
    PG_POOL_OTEL_LEAK_THRESHOLD_MS: '500',
    PG_POOL_OTEL_LEAK_CHECK_INTERVAL_MS: '100',
  }, dir);
  app.child.stdin!.on('error', () => {});
  await app.waitFor('ready', 20_000);
  return { app, port };
}

describe('an esbuild bundle that inlines pg', () => {
  it('inlines pg: the bundle requires no module named pg', () => {
    const code = readFileSync(bundle, 'utf8');
    assert.doesNotMatch(code, /require\(["']pg["']\)/);
    assert.match(code, /node_modules\/pg\/lib\/client\.js/, 'pg is in the bundle');
  });

  it('under the preload with instrumentPg(pg): pool metrics on /metrics, the leak at the original line', async () => {
    const { app, port } = await start(['--enable-source-maps', '--require', PRELOAD, bundle]);
    try {
      assert.deepEqual(JSON.parse(app.stdout().split('\n')[0]!), { instrumented: true, orders: [{ id: 1 }] });
      const pool = { db_client_connection_pool_name: 'bundled' };
      let page = '';
      await eventually(async () => {
        page = await scrape(port);
        return sample(page, 'pg_pool_checkout_leaked', pool) === 1;
      }, 10_000, 'the leaked checkout on /metrics');
      assert.equal(sample(page, 'db_client_connection_max', pool), 2);
      assert.equal(sample(page, 'db_client_connection_count', { ...pool, db_client_connection_state: 'used' }), 1);
      assert.equal(sample(page, 'db_client_connection_wait_time_count', pool), 2);
      assert.equal(sample(page, 'db_client_operation_duration_count', { ...pool, db_operation_name: 'SELECT' }), 1);

      await eventually(() => app.stderr().includes('possible connection leak'), 5000, 'the leak report');
      const report = app.stderr().split(/\n(?=\[pg-pool-otel\])/).find((b) => b.includes('possible connection leak'))!;
      assert.match(report, /pool "bundled"/);
      // The TypeScript source's line, through the bundle's source map; not the bundle's own.
      assert.ok(report.includes(`fixtures/bundled/app.ts:${LEAK_LINE}:`), report);
      assert.doesNotMatch(report, /app\.js:\d+/);
      assert.doesNotMatch(app.stderr(), /instrumentPg\(\) was/, 'no complaint from instrumentPg');
      app.child.stdin!.end();
      assert.equal((await app.exited).code, 0, app.stderr());
    } finally {
      app.kill();
    }
  });

  it('with no instrumentation running, instrumentPg says once what to do and the app runs as before', async () => {
    const { app } = await start([bundle]);
    try {
      assert.deepEqual(JSON.parse(app.stdout().split('\n')[0]!), { instrumented: false, orders: [{ id: 1 }] });
      app.child.stdin!.end();
      assert.equal((await app.exited).code, 0, app.stderr());
      const lines = app.stderr().split('\n').filter(Boolean);
      assert.equal(lines.length, 1, app.stderr());
      assert.match(lines[0]!, /instrumentPg\(\) was called but no pg-pool-otel instrumentation is running.*--require pg-pool-otel\/register/);
    } finally {
      app.kill();
    }
  });
});
