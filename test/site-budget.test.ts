// The stack-capture limit: at most PG_POOL_OTEL_STACK_CAPTURES_PER_SECOND checkouts a second get
// their stack captured; a report that meets a checkout taken past the limit says so and lifts the
// limit, so that the next checkout from the same code is named. Under a test runner there is no
// limit by default.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Pool, PoolClient } from 'pg';
import { instrument, eventually } from './support/telemetry';
import { usePostgres } from './support/server';
import { setPoolName } from '../src/index';
import { resolveSettings } from '../src/settings';
import { checkoutsOutstanding } from '../src/testing';
import { captureLog, siteOf } from './fixtures/leaks/capture';
import { takeElsewhere } from './fixtures/leaks/sites';

const PER_SECOND = 2;
const SLOW_WAIT_MS = 100;
const LEAK_MS = 1500;
const t = instrument({
  stackCapturesPerSecond: PER_SECOND,
  slowWaitMs: SLOW_WAIT_MS,
  leakThresholdMs: LEAK_MS,
  leakCheckIntervalMs: 20,
  configAdvice: false,
});
void t.instrumentation.settings; // settings install the stderr logger: replace it afterwards
const logs = captureLog();
const server = usePostgres();
after(() => t.shutdown());

const SITES = join(__dirname, 'fixtures', 'leaks', 'sites.ts');

/** Whether the stack of this held checkout was captured, as pg-pool-otel/testing sees it. */
function captured(pool: string, count: number): boolean[] {
  const mine = checkoutsOutstanding().filter((c) => c.pool === pool);
  assert.equal(mine.length, count, 'checkouts outstanding');
  return mine.map((c) => c.stackCaptured);
}

/** Checkouts taken one after another, each released unless it is uncaptured and `keep` wants more. */
async function takeUntilUncaptured(p: Pool, name: string, keep: number): Promise<{ held: PoolClient[]; named: number; ms: number }> {
  const held: PoolClient[] = [];
  let named = 0;
  const t0 = performance.now();
  for (let i = 0; i < 50 && held.length < keep; i++) {
    const c = await takeElsewhere(p);
    if (captured(name, held.length + 1).at(-1)) {
      named++;
      c.release();
    } else held.push(c);
  }
  return { held, named, ms: performance.now() - t0 };
}

describe('stack-capture limit', () => {
  it('captures at most the limit a second; a report that meets an uncaptured checkout says why and lifts the limit', async () => {
    const p = new t.pg.Pool({ connectionString: server.current.url, max: 3 });
    setPoolName(p, 'hot');

    // Checkouts in quick succession: past the limit, they are taken without their stack.
    const { held, named, ms } = await takeUntilUncaptured(p, 'hot', 3);
    assert.equal(held.length, 3, `three checkouts past the limit (named first: ${named})`);
    const windows = Math.ceil(ms / 1000) + 1;
    assert.ok(named <= PER_SECOND * windows, `${named} captured in ${ms.toFixed(0)} ms: at most ${PER_SECOND} a second`);

    // The pool is full of them: a fourth request waits, and the exhaustion report explains the blind holders.
    const fourth = p.connect();
    await eventually(() => logs.warnings().some((w) => / exhausted: /.test(w)), 5000, 'exhaustion report');
    const report = logs.warnings().find((w) => / exhausted: /.test(w))!;
    assert.match(report, /3 held at \(stack not captured\)/);
    assert.match(report, /it was taken past the limit of 2 stack captures a second \(PG_POOL_OTEL_STACK_CAPTURES_PER_SECOND; 0 lifts it\)\. Every checkout is captured from now for 10 minutes/);

    // Their leak reports, later, say the same; the limit is already lifted.
    await eventually(() => logs.warnings().filter((w) => /possible connection leak: pool "hot"/.test(w)).length === 3, 8000, 'three leak reports');
    for (const w of logs.warnings().filter((x) => /possible connection leak/.test(x))) {
      assert.match(w, /Taken at:\n {4}\(acquisition stack not captured: it was taken past the limit of 2 .*Every checkout is already captured for 10 minutes/);
    }
    for (const c of held) c.release();
    (await fourth).release();
    logs.clear();

    // Lifted: ten checkouts in quick succession, far past the limit, all named.
    const t0 = performance.now();
    const clients: PoolClient[] = [];
    for (let i = 0; i < 10; i++) {
      const c = await takeElsewhere(p);
      assert.deepEqual(captured('hot', 1), [true], `checkout ${i + 1} captured`);
      if (i < 9) c.release();
      else clients.push(c);
    }
    const elapsed = performance.now() - t0;
    assert.ok(10 > PER_SECOND * (Math.ceil(elapsed / 1000) + 1), `10 checkouts in ${elapsed.toFixed(0)} ms would exceed the limit`);

    // And the next leak is named at its line.
    await eventually(() => logs.warnings().some((w) => /possible connection leak: pool "hot"/.test(w)), 8000, 'named leak report');
    const leak = logs.warnings().find((w) => /possible connection leak: pool "hot"/.test(w))!;
    assert.ok(leak.includes(siteOf(SITES, 'takeElsewhere')), leak);
    clients[0]!.release();
    await p.end();
  });

  it('has no limit by default under a test runner, 200 a second elsewhere; a malformed value is named', () => {
    assert.equal(resolveSettings({}, {}).stackCapturesPerSecond, 200);
    assert.equal(resolveSettings({}, { NODE_TEST_CONTEXT: 'child' }).stackCapturesPerSecond, 0);
    assert.equal(resolveSettings({}, { JEST_WORKER_ID: '1' }).stackCapturesPerSecond, 0);
    assert.equal(resolveSettings({}, { NODE_ENV: 'test', PG_POOL_OTEL_STACK_CAPTURES_PER_SECOND: '50' }).stackCapturesPerSecond, 50);
    logs.clear();
    assert.equal(resolveSettings({}, { PG_POOL_OTEL_STACK_CAPTURES_PER_SECOND: 'many' }).stackCapturesPerSecond, 200);
    assert.deepEqual(logs.warnings(), [
      'WARN PG_POOL_OTEL_STACK_CAPTURES_PER_SECOND="many" is not valid: expected a whole number from 0 to 1000000 (0: no limit, every checkout is captured); using the default 200.',
    ]);
  });
});
