// PG_POOL_OTEL_SERVER_SAMPLE_INTERVAL_MS=0: no pg_stat_activity sampling at all, but the limits
// are still read once, on an idle client after the first release.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument, eventually } from './support/telemetry';
import { usePostgres } from './support/server';

const t = instrument({ serverSampleIntervalMs: 0, leakThresholdMs: 0, configAdvice: false });
const server = usePostgres({ maxConnections: 20 });
after(() => t.shutdown());

describe('server sampling off', () => {
  it('reads the limits but never samples pg_stat_activity', async () => {
    const pool = new t.pg.Pool({ connectionString: server.current.url, max: 2 });
    await pool.query('SELECT 1');
    const srv = { 'server.address': '127.0.0.1', 'server.port': server.current.port };
    await eventually(async () => (await t.value('pg_pool.server.max_connections', srv)) === 20, 3000, 'limits');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await t.points('pg_pool.server.connection.count'), []);
    assert.equal(await t.value('pg_pool.server.sample.timestamp', srv), undefined);
    assert.equal(await t.value('pg_pool.server.sample.failures', srv), 0);
    await pool.end();
  });
});
