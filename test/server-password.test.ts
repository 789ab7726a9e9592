// The monitoring connection of a pool configured field by field ({ host, user, password, ... }):
// pg-pool makes the password non-enumerable (to keep it out of stack traces), so a copy of the
// pool's options made by spreading them loses it, and every sample failed authentication. The
// other server tests configure pools by URL, which keeps the password in the connection string.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument, eventually } from './support/telemetry';
import { usePostgres } from './support/server';
import { captureLog } from './fixtures/leaks/capture';
import { setLogger, stderrLogger } from '../src/diag';
import { APP_PASSWORD, APP_ROLE, createAppRole } from './fixtures/server/helpers';

const t = instrument({ serverSampleIntervalMs: 100, leakThresholdMs: 0, configAdvice: false });
const server = usePostgres({ maxConnections: 20 });
after(() => t.shutdown());

describe('the monitoring connection of a pool configured field by field', () => {
  before(async () => {
    await createAppRole(t.pg, server.current);
  });

  it('keeps the password pg-pool hides: samples arrive and none fails', async () => {
    const log = captureLog();
    const s = server.current;
    const pool = new t.pg.Pool({ host: s.host, port: s.port, database: s.database, user: APP_ROLE, password: APP_PASSWORD, max: 2 });
    const srv = { 'server.address': s.host, 'server.port': s.port };
    try {
      // What this test is about: the password is there, but not enumerable.
      assert.equal(Object.keys(pool.options).includes('password'), false, 'pg-pool hides the password');
      await pool.query('SELECT 1');
      await eventually(async () => ((await t.value('pg_pool.server.sample.timestamp', srv)) ?? 0) > 0, 5000, 'a good sample');
      assert.equal((await t.value('pg_pool.server.sample.failures', srv)) ?? 0, 0, 'no failed sample');
      assert.deepEqual(log.warnings().filter((l) => l.includes('monitoring connection')), []);
      // The app's own connection counts; the monitoring session does not.
      const points = (await t.points('pg_pool.server.connection.count')).filter((p) => p.attributes.owner === 'this_process');
      assert.equal(points.reduce((n, p) => n + (p.value as number), 0), 1);
    } finally {
      await pool.end();
      setLogger(stderrLogger());
    }
  });
});
