// enable() attaches, disable() detaches everything: no listener left on a pool, no measurement
// taken while disabled, and the series carry on after enable().
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { errorMonitor } from 'node:events';
import { instrument } from './support/telemetry';
import { usePostgres } from './support/server';
import { setPoolName } from '../src/index';

const t = instrument({ leakThresholdMs: 0, configAdvice: false, serverSampleIntervalMs: 0 });
const server = usePostgres();
after(() => t.shutdown());

const EVENTS = ['connect', 'release', 'remove', errorMonitor] as const;

describe('instrumentation lifecycle', () => {
  it('disable() removes every pool listener and stops measuring; enable() resumes the same series', async () => {
    const pool = new t.pg.Pool({ connectionString: server.current.url, max: 2 });
    setPoolName(pool, 'lifecycle');
    const listeners = () => EVENTS.map((e) => pool.listenerCount(e));
    const waits = async () => (await t.histogram('db.client.connection.wait_time', { 'db.client.connection.pool.name': 'lifecycle' }))?.count;
    assert.deepEqual(listeners(), [0, 0, 0, 0], 'nothing before first use');
    await pool.query('SELECT 1');
    // Releases are seen at pg-pool's _release, not through a listener on the app's pool.
    assert.deepEqual(listeners(), [1, 0, 1, 1], "one listener per event once used, none on 'release'");
    assert.equal(await waits(), 1);

    t.instrumentation.disable();
    try {
      assert.deepEqual(listeners(), [0, 0, 0, 0], 'all detached');
      await pool.query('SELECT 1');
      const c = await pool.connect();
      c.release();
      assert.deepEqual(listeners(), [0, 0, 0, 0], 'none attached while disabled');
    } finally {
      t.instrumentation.enable();
    }
    assert.equal(await waits(), 1, 'nothing measured while disabled');
    await pool.query('SELECT 1');
    assert.deepEqual(listeners(), [1, 0, 1, 1], 'attached again, once');
    assert.equal(await waits(), 2, 'the same series carries on');
    await pool.end();
  });
});
