// Server headroom through a service's life: the first sample within a second of the first
// connection (even after a start-up burst whose connections close on idle timeout), samples while
// the pool holds no connection at all, limits read afresh after the server restarts with a new
// max_connections, and a short job that exits by itself however often it is scraped.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { join } from 'node:path';
import { instrument, eventually } from './support/telemetry';
import { usePostgres } from './support/server';
import { startApp } from './support/child';
import { freePort } from '../tools/embedded-postgres';

const INTERVAL = 1500;
const t = instrument({ serverSampleIntervalMs: INTERVAL, leakThresholdMs: 0, configAdvice: false });
const server = usePostgres({ maxConnections: 20 });
after(() => t.shutdown());

const srv = () => ({ 'server.address': '127.0.0.1', 'server.port': server.current.port });
const sampledAt = async () => (await t.value('pg_pool.server.sample.timestamp', srv())) ?? 0;

describe('server headroom through a service\u2019s life', () => {
  it('a start-up burst is sampled within a second, and sampling goes on once its connections closed', async () => {
    const pool = new t.pg.Pool({ connectionString: server.current.url, max: 4, idleTimeoutMillis: 100 });
    const started = Date.now();
    await Promise.all([1, 2, 3, 4].map(() => pool.query('SELECT 1')));
    await eventually(async () => (await t.value('pg_pool.server.max_connections', srv())) === 20, 1000, 'max_connections within a second');
    assert.ok(Date.now() - started < 1000 && Date.now() - started < INTERVAL);
    await eventually(() => pool.totalCount === 0, 3000, 'the burst\u2019s connections closed on idle timeout');
    const emptySince = Date.now() / 1000;
    await eventually(async () => (await sampledAt()) > emptySince, INTERVAL * 2 + 500, 'a sample while the pool has no connection');
    assert.equal(pool.totalCount, 0, 'sampling opened none of the pool\u2019s');
    await pool.end();
  });

  it('reads max_connections afresh after the server restarts with a new value', async () => {
    const pool = new t.pg.Pool({ connectionString: server.current.url, max: 2 });
    pool.on('error', () => {}); // the restart terminates its idle connection
    await pool.query('SELECT 1');
    await eventually(async () => (await t.value('pg_pool.server.max_connections', srv())) === 20, 3000, 'the first value');
    await server.current.restart(undefined, { max_connections: 27 });
    await pool.query('SELECT 1');
    await eventually(async () => (await t.value('pg_pool.server.max_connections', srv())) === 27, INTERVAL * 2 + 1000, 'the new value');
    assert.equal((await t.points('pg_pool.server.max_connections')).length, 1, 'one server, not an old and a new one');
    await pool.end();
  });

  it('a short job exits by itself while /metrics is scraped over a keep-alive connection', async () => {
    const port = await freePort();
    const app = startApp(['--require', join(__dirname, '..', 'dist', 'register.js'), join(__dirname, 'fixtures', 'server', 'short-job.cjs')], {
      DATABASE_URL: server.current.url,
      OTEL_EXPORTER_PROMETHEUS_PORT: String(port),
      OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
      PG_POOL_OTEL_SERVER_SAMPLE_INTERVAL_MS: '200',
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    let scrapes = 0;
    let scraping = true;
    const scrapeLoop = (async () => {
      while (scraping && app.child.exitCode === null) {
        await new Promise<void>((resolve) => {
          const req = http.get({ host: '127.0.0.1', port, path: '/metrics', agent }, (res) => {
            res.resume();
            res.on('end', () => {
              scrapes++;
              sockets.add(res.socket);
              resolve();
            });
          });
          req.on('error', () => resolve());
        });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      await app.waitFor('done', 15_000);
      const doneAt = Date.now();
      const exit = await Promise.race([app.exited, new Promise<'alive'>((r) => setTimeout(() => r('alive'), 4000))]);
      assert.notEqual(exit, 'alive', `still alive 4 s after its work ended (${scrapes} scrapes); stderr: ${app.stderr()}`);
      assert.equal((exit as { code: number | null }).code, 0, app.stderr());
      assert.ok(Date.now() - doneAt < 4000);
      assert.ok(scrapes >= 3 && sockets.size < scrapes, `scraped over keep-alive (${scrapes} scrapes on ${sockets.size} sockets)`);
    } finally {
      scraping = false;
      app.kill();
      await scrapeLoop;
      agent.destroy();
    }
  });
});
