// pg-pool-otel/testing with the programmatic API: fails listing each outstanding checkout with
// its site, passes once it is released; long-lived checkouts only on request; a clear error
// when no instrumentation runs.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { instrument } from './support/telemetry';
import { usePostgres } from './support/server';
import { markLongLived, setPoolName } from '../src/index';
import { assertNoLeakedCheckouts, checkoutsOutstanding } from '../src/testing';
import { siteOf } from './fixtures/leaks/capture';
import { takeAndForget, takeForListen } from './fixtures/leaks/sites';

const t = instrument({ configAdvice: false });
const server = usePostgres();
after(() => t.shutdown());

const SITES = join(__dirname, 'fixtures', 'leaks', 'sites.ts');

describe('assertNoLeakedCheckouts', () => {
  it('fails on a leaked checkout, listing its pool, age and site, and passes after it is released', async () => {
    const p = new t.pg.Pool({ connectionString: server.current.url });
    setPoolName(p, 'suite');
    await assertNoLeakedCheckouts();
    const client = await takeAndForget(p);
    const err = await assertNoLeakedCheckouts({ graceMs: 20 }).then(
      () => assert.fail('should have failed'),
      (e: Error) => e
    );
    assert.equal(err.name, 'LeakedCheckoutError');
    assert.match(err.message, /^1 pool checkout was never released:\n1\) pool "suite", held \d+\.\d s, taken at /);
    assert.ok(err.message.includes(siteOf(SITES, 'takeAndForget')), err.message);
    const [outstanding] = checkoutsOutstanding();
    assert.equal(outstanding?.pool, 'suite');
    assert.equal(outstanding?.longLived, false);
    assert.equal(outstanding?.stackCaptured, true);
    assert.ok(outstanding!.heldMs >= 0);
    client.release();
    await assertNoLeakedCheckouts();
    await p.end();
  });

  it('waits out a release that is about to happen', async () => {
    const p = new t.pg.Pool({ connectionString: server.current.url });
    const client = await p.connect();
    setTimeout(() => client.release(), 30);
    await assertNoLeakedCheckouts({ graceMs: 1000 });
    await p.end();
  });

  it('ignores long-lived checkouts unless includeLongLived', async () => {
    const p = new t.pg.Pool({ connectionString: server.current.url });
    const listen = await takeForListen(p);
    markLongLived(listen);
    await assertNoLeakedCheckouts({ graceMs: 0 });
    await assert.rejects(assertNoLeakedCheckouts({ graceMs: 0, includeLongLived: true }), /\(marked long-lived\)/);
    listen.release();
    await p.end();
  });

  it('stops listing a disabled instrumentation and lists it again once re-enabled', async () => {
    t.instrumentation.disable();
    assert.throws(() => checkoutsOutstanding(), /no pg-pool-otel instrumentation is running/);
    t.instrumentation.enable();
    const p = new t.pg.Pool({ connectionString: server.current.url });
    const client = await p.connect();
    assert.equal(checkoutsOutstanding().length, 1);
    client.release();
    await assertNoLeakedCheckouts();
    await p.end();
  });

  it('says why when no instrumentation is running', () => {
    const res = spawnSync(
      process.execPath,
      ['--import', 'tsx', '-e', "require('./src/testing').checkoutsOutstanding()"],
      { cwd: join(__dirname, '..'), encoding: 'utf8' }
    );
    assert.notEqual(res.status, 0);
    assert.match(res.stderr, /no pg-pool-otel instrumentation is running in this process/);
  });

  it('warns when it passes without ever having seen a pool (pg loaded where the hooks cannot see it)', () => {
    const script =
      "new (require('./src/instrumentation').PgPoolInstrumentation)();" +
      "require('./src/testing').assertNoLeakedCheckouts().then(() => console.log('passed'));";
    const res = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: join(__dirname, '..'), encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /passed/);
    assert.match(res.stderr, /WARN pg-pool-otel\/testing: the leak check passed but no pg pool has been used/);
  });
});
