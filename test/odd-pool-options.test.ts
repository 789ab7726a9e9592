// Odd pool options (max 0, 1, negative or a string; idleTimeoutMillis 0; min above max) still
// give metrics that say what pg-pool really does, and nothing inside the package fails.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument } from './support/telemetry';
import { usePostgres } from './support/server';
import { captureLog } from './fixtures/leaks/capture';
import { setPoolName } from '../src/index';

const t = instrument({ leakThresholdMs: 1000 });
const server = usePostgres();
void t.instrumentation.settings; // settings install the stderr logger: replace it afterwards
const logs = captureLog();
after(() => t.shutdown());

type Pool = InstanceType<typeof t.pg.Pool>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pool(name: string, extra: Record<string, unknown>): Pool {
  const p = new t.pg.Pool({ connectionString: server.current.url, ...extra });
  setPoolName(p, name);
  return p;
}

/** Every gauge of pool `name`, by metric and state; each must be a finite, non-negative number. */
async function gauges(name: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of await t.collect()) {
    for (const p of m.dataPoints) {
      if (p.attributes['db.client.connection.pool.name'] !== name || typeof p.value !== 'number') continue;
      const state = p.attributes['db.client.connection.state'];
      const key = m.descriptor.name + (state ? `{${state}}` : p.attributes.reason ? `{${p.attributes.reason}}` : '');
      assert.ok(Number.isFinite(p.value) && p.value >= 0, `${key} = ${p.value}`);
      out[key] = p.value;
    }
  }
  return out;
}

describe('odd pool options', () => {
  it('max 0 is pg-pool\'s default of 10', async () => {
    const p = pool('max0', { max: 0 });
    await p.query('SELECT 1');
    const g = await gauges('max0');
    assert.equal(g['db.client.connection.max'], 10);
    assert.equal(g['db.client.connection.idle.max'], 10);
    assert.equal(g['db.client.connection.count{idle}'], 1);
    await p.end();
  });

  it('max 1: the second concurrent checkout waits, and is counted as a wait', async () => {
    const p = pool('max1', { max: 1 });
    const first = await p.connect();
    const second = p.connect();
    await sleep(20);
    let g = await gauges('max1');
    assert.equal(g['db.client.connection.max'], 1);
    assert.equal(g['db.client.connection.pending_requests'], 1);
    assert.equal(g['db.client.connection.count{used}'], 1);
    first.release();
    (await second).release();
    g = await gauges('max1');
    assert.equal(g['db.client.connection.pending_requests'], 0);
    assert.equal(g['pg_pool.connection.waits'], 1);
    assert.equal(g['db.client.connection.count{idle}'], 1);
    await p.end();
  });

  it('a negative max never opens a connection: max reads 0 and every checkout times out', async () => {
    const p = pool('negative', { max: -1, connectionTimeoutMillis: 50 });
    await assert.rejects(p.query('SELECT 1'), /timeout/);
    const g = await gauges('negative');
    assert.equal(g['db.client.connection.max'], 0);
    assert.equal(g['db.client.connection.timeouts'], 1);
    assert.equal(g['db.client.connection.pending_requests'], 0);
    assert.equal(g['db.client.connection.count{idle}'], 0);
    await p.end();
  });

  it('a numeric string max is the number pg-pool compares with', async () => {
    const p = pool('stringmax', { max: '2' });
    const held = await Promise.all([p.connect(), p.connect()]);
    const third = p.connect();
    await sleep(20);
    const g = await gauges('stringmax');
    assert.equal(g['db.client.connection.max'], 2);
    assert.equal(g['db.client.connection.pending_requests'], 1);
    for (const c of held) c.release();
    (await third).release();
    await p.end();
  });

  for (const [name, max] of [['nanmax', 'many'], ['infinitemax', Infinity]] as const) {
    it(`a max of ${String(max)} is a pool without a limit: no max series, the rest as usual`, async () => {
      const p = pool(name, { max, min: 2 });
      const held = await Promise.all([p.connect(), p.connect(), p.connect()]);
      const g = await gauges(name);
      assert.equal(g['db.client.connection.max'], undefined);
      assert.equal(g['db.client.connection.idle.max'], undefined);
      assert.equal(g['db.client.connection.idle.min'], 2);
      assert.equal(g['db.client.connection.count{used}'], 3);
      for (const c of held) c.release();
      await p.end();
    });
  }

  it('idleTimeoutMillis 0 keeps idle connections: nothing is closed as idle_timeout', async () => {
    const p = pool('noidle', { idleTimeoutMillis: 0 });
    await p.query('SELECT 1');
    await sleep(100);
    const g = await gauges('noidle');
    assert.equal(g['db.client.connection.count{idle}'], 1);
    assert.equal(g['pg_pool.connection.closed{idle_timeout}'], 0);
    await p.end();
  });

  it('min above max: idle.min is capped at max', async () => {
    const p = pool('minmax', { min: 5, max: 2, idleTimeoutMillis: 20 });
    await Promise.all([p.query('SELECT pg_sleep(0.01)'), p.query('SELECT pg_sleep(0.01)')]);
    await sleep(100);
    const g = await gauges('minmax');
    assert.equal(g['db.client.connection.idle.min'], 2);
    assert.equal(g['db.client.connection.max'], 2);
    assert.equal(g['db.client.connection.count{idle}'], 2, 'pg-pool keeps min connections from idle eviction');
    assert.equal(g['pg_pool.connection.closed{idle_timeout}'], 0);
    await p.end();
  });

  it('logged no internal error', () => {
    assert.deepEqual(logs.lines.filter((l) => /^(ERROR|WARN) internal error/.test(l)), []);
  });
});
