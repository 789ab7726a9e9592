// PG_POOL_OTEL_SERVER_SAMPLE_INTERVAL_MS=0 turns server monitoring off: the package never opens its
// monitoring connection, and reports no server series.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument } from './support/telemetry';
import { usePostgres } from './support/server';
import { MONITOR_APPLICATION_NAME } from '../src/server/monitor-connection';

const t = instrument({ serverSampleIntervalMs: 0, leakThresholdMs: 0, configAdvice: false });
const server = usePostgres({ maxConnections: 20 });
after(() => t.shutdown());

describe('server sampling off', () => {
  it('opens no monitoring connection and reports no server series', async () => {
    // Watches the server from a connection of its own while the app works: a monitoring session
    // would show up here under its application_name.
    const watcher = new t.pg.Client(server.current.url);
    await watcher.connect();
    const pool = new t.pg.Pool({ connectionString: server.current.url, max: 2 });
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      await Promise.all([pool.query('SELECT 1'), pool.query('SELECT 1')]);
      const rows = (await watcher.query('SELECT DISTINCT application_name AS a FROM pg_stat_activity')).rows as { a: string }[];
      for (const r of rows) seen.add(r.a);
      await new Promise((r) => setTimeout(r, 5));
    }
    const bare = new t.pg.Client(server.current.url);
    await bare.connect();
    await bare.end();
    assert.ok(!seen.has(MONITOR_APPLICATION_NAME), [...seen].join(', '));
    const names = (await t.collect()).map((m) => m.descriptor.name);
    assert.deepEqual(names.filter((n) => n.startsWith('pg_pool.server.') || n.startsWith('pg_pool.pooler.')), []);
    assert.ok(names.includes('db.client.connection.count'), 'the pool metrics are there');
    await pool.end();
    await watcher.end();
  });
});
