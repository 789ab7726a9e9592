// Pool-per-request: live pools gauge, created counter, one warning for a burst of new pools;
// and the once-per-configuration pool advice.
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument } from './support/telemetry';
import { usePostgres } from './support/server';
import { setPoolName } from '../src/index';
import { captureLog } from './fixtures/leaks/capture';
import { adviceFor } from '../src/leaks/config-advice';

const t = instrument({ leakThresholdMs: 0, poolBurstCount: 5, poolBurstWindowMs: 60_000 });
void t.instrumentation.settings;
const logs = captureLog();
const server = usePostgres();
after(() => t.shutdown());
afterEach(() => logs.clear());

describe('pool census', () => {
  it('counts live and created pools, and warns once when more than poolBurstCount are created in the window', async () => {
    const before = (await t.value('pg_pool.pools.created')) ?? 0;
    const pools = [];
    for (let i = 0; i < 8; i++) {
      const p = new t.pg.Pool({ connectionString: server.current.url, connectionTimeoutMillis: 5000, maxLifetimeSeconds: 60 });
      setPoolName(p, `per-request-${i}`);
      await p.query('SELECT 1');
      pools.push(p);
    }
    assert.equal(await t.value('pg_pool.pools'), 8);
    assert.equal((await t.value('pg_pool.pools.created'))! - before, 8);
    const warnings = logs.warnings().filter((w) => w.includes('pools were created'));
    assert.equal(warnings.length, 1, logs.lines.join('\n'));
    assert.match(warnings[0]!, /^WARN 6 pools were created within \d+\.\d s \(more than 5 in 60\.0 s\): is a pool created per request\?/);
    assert.ok(warnings[0]!.includes(`${__filename}:`), 'names the code that created the pool');
    await Promise.all(pools.slice(0, 3).map((p) => p.end()));
    assert.equal(await t.value('pg_pool.pools'), 5);
    assert.equal((await t.value('pg_pool.pools.created'))! - before, 8, 'created is cumulative');
    await Promise.all(pools.slice(3).map((p) => p.end()));
    assert.equal(await t.value('pg_pool.pools'), 0);
  });
});

describe('pool configuration advice', () => {
  it('advises on a missing connectionTimeoutMillis, a churning idleTimeoutMillis and no recycling', () => {
    const advice = adviceFor({ idleTimeoutMillis: 200 });
    assert.equal(advice.length, 3);
    assert.match(advice[0]!, /connectionTimeoutMillis is not set/);
    assert.match(advice[1]!, /idleTimeoutMillis is 200 ms/);
    assert.match(advice[2]!, /neither maxLifetimeSeconds nor maxUses is set/);
    assert.deepEqual(adviceFor({ connectionTimeoutMillis: 5000, idleTimeoutMillis: 10_000, maxLifetimeSeconds: 1800 }), []);
    assert.deepEqual(adviceFor({ connectionTimeoutMillis: 5000, idleTimeoutMillis: 0, maxUses: 7500 }), [], '0 = never evict');
  });

  it('logs the advice once per pool configuration at first use, as info; configAdvice false silences it', async () => {
    const make = () => {
      const p = new t.pg.Pool({ connectionString: server.current.url, idleTimeoutMillis: 100 });
      setPoolName(p, 'advised');
      return p;
    };
    const a = make();
    await a.query('SELECT 1');
    await a.query('SELECT 1');
    const b = make();
    await b.query('SELECT 1');
    const advice = logs.infos().filter((l) => l.includes('configuration advice'));
    assert.equal(advice.length, 1, logs.lines.join('\n'));
    assert.match(advice[0]!, /^INFO pool "advised" configuration advice \(PG_POOL_OTEL_CONFIG_ADVICE=false silences this\):\n  - connectionTimeoutMillis/);
    await Promise.all([a.end(), b.end()]);

    t.instrumentation.setConfig({ leakThresholdMs: 0, configAdvice: false });
    void t.instrumentation.settings;
    const quiet = captureLog();
    const c = new t.pg.Pool({ connectionString: server.current.url, idleTimeoutMillis: 50, max: 3 });
    await c.query('SELECT 1');
    assert.deepEqual(quiet.lines.filter((l) => l.includes('advice')), []);
    await c.end();
  });
});
