// Faults on the server side: a backend terminated in the middle of a query, and a server restart
// in the middle of traffic. The counts never go negative, every close is attributed, the pool
// recovers, and nothing is left behind in the package's own bookkeeping.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument, eventually } from './support/telemetry';
import { usePostgres, terminateBackend } from './support/server';
import { setPoolName } from '../src/index';
import { checkoutsOutstanding } from '../src/testing';
import { CLOSE_REASONS } from '../src/pool/close-reason';
import type { PoolClient } from 'pg';

const t = instrument({ leakThresholdMs: 2000, serverSampleIntervalMs: 200 });
const server = usePostgres({ maxConnections: 40 });
after(() => t.shutdown());

type Pool = InstanceType<typeof t.pg.Pool>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The error `p` rejects with (handled at once: it arrives while the test is busy), or undefined. */
function failure(p: Promise<unknown>): Promise<(Error & { code?: string }) | undefined> {
  return p.then(() => undefined, (e: Error) => e);
}

function pool(name: string, extra: Record<string, unknown> = {}): Pool {
  const p = new t.pg.Pool({ connectionString: server.current.url, ...extra });
  setPoolName(p, name);
  return p;
}
const of = (name: string) => ({ 'db.client.connection.pool.name': name });

const terminate = (pid: number) => terminateBackend(t.pg, server.current.url, pid);

/** Waits until a backend runs `text`, and returns its pid. */
async function backendRunning(text: string): Promise<number> {
  const c = new t.pg.Client({ connectionString: server.current.url });
  await c.connect();
  try {
    let pid: number | undefined;
    await eventually(async () => {
      const r = await c.query("SELECT pid FROM pg_stat_activity WHERE query = $1 AND state = 'active'", [text]);
      pid = r.rows[0]?.pid as number | undefined;
      return pid !== undefined;
    }, 5000, `a backend running ${text}`);
    return pid!;
  } finally {
    await c.end();
  }
}

async function closedByReason(name: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const reason of CLOSE_REASONS) out[reason] = (await t.value('pg_pool.connection.closed', { ...of(name), reason })) ?? 0;
  return out;
}

/** Every count point of every pool is a non-negative integer. */
async function assertCountsSane(): Promise<void> {
  for (const metric of ['db.client.connection.count', 'db.client.connection.pending_requests', 'pg_pool.client.connection.count']) {
    for (const p of await t.points(metric)) {
      const v = p.value as number;
      assert.ok(Number.isInteger(v) && v >= 0, `${metric} ${JSON.stringify(p.attributes)} = ${v}`);
    }
  }
}

/** The package's own per-pool bookkeeping holds nothing once the app holds nothing. */
function assertNoBookkeeping(p: Pool): void {
  const state = t.instrumentation.core.registry.get(p as never);
  assert.ok(state, 'the pool is known');
  assert.equal(state.checkedOut.size, 0, 'no checkout left in the pool state');
  assert.deepEqual(checkoutsOutstanding().filter((c) => c.pool === state.name), [], 'no outstanding checkout');
}

describe('a backend terminated in the middle of a query', () => {
  it('pool.query(): the query fails as without the package, the close is released_with_error, the pool recovers', async () => {
    const p = pool('midquery-q');
    const running = failure(p.query('SELECT pg_sleep(30) /* midquery-q */'));
    const pid = await backendRunning('SELECT pg_sleep(30) /* midquery-q */');
    await terminate(pid);
    assert.equal((await running)?.code, '57P01', 'the query fails with the server\'s error, as without the package');
    await eventually(async () => (await closedByReason('midquery-q')).released_with_error === 1, 3000, 'close counted');
    await assertCountsSane();
    assert.equal((await p.query('SELECT 1 AS n')).rows[0].n, 1, 'the pool recovers');
    assert.equal(await t.value('db.client.connection.count', { ...of('midquery-q'), 'db.client.connection.state': 'used' }), 0);
    assert.equal(await t.value('db.client.connection.count', { ...of('midquery-q'), 'db.client.connection.state': 'idle' }), 1);
    const spans = t.spans.getFinishedSpans().filter((s) => s.attributes['db.query.text'] === 'SELECT pg_sleep(?) /* midquery-q */');
    assert.equal(spans.length, 1);
    assert.equal(spans[0]!.attributes['error.type'], '57P01', 'the failed query span carries the SQLSTATE');
    assertNoBookkeeping(p);
    await p.end();
  });

  it('pool.connect() + client.query(): the app sees its error, the release is counted broken', async () => {
    const p = pool('midquery-c');
    const c = await p.connect();
    const appErrors: Error[] = [];
    c.on('error', (e: Error) => appErrors.push(e)); // the app's own handler for its checked-out client
    const running = failure(c.query('SELECT pg_sleep(30) /* midquery-c */'));
    await terminate(await backendRunning('SELECT pg_sleep(30) /* midquery-c */'));
    assert.equal((await running)?.code, '57P01', 'the query fails with the server\'s error, as without the package');
    await eventually(() => (c as unknown as { _queryable: boolean })._queryable === false, 3000, 'client unusable');
    assert.deepEqual(appErrors.map((e) => e.message), ['Connection terminated unexpectedly'], "the app's handler ran");
    c.release();
    await eventually(async () => (await closedByReason('midquery-c')).broken === 1, 3000, 'broken close counted');
    const reasons = await closedByReason('midquery-c');
    assert.equal(Object.values(reasons).reduce((a, b) => a + b, 0), 1, `exactly one close: ${JSON.stringify(reasons)}`);
    await assertCountsSane();
    assert.equal((await p.query('SELECT 1 AS n')).rows[0].n, 1, 'the pool recovers');
    assertNoBookkeeping(p);
    await p.end();
  });
});

describe('a server restart in the middle of traffic', () => {
  it('counts stay sane, every connection opened is closed or still open, the pool recovers', async () => {
    const name = 'restart';
    const p = pool(name, { max: 6, connectionTimeoutMillis: 2000 });
    const appErrors: Error[] = [];
    p.on('error', (e: Error) => appErrors.push(e)); // idle clients lose their server too

    let running = true;
    let ok = 0;
    let failed = 0;
    let okAfterRestart = 0;
    let restarted = false;
    const tally = (fine: boolean) => {
      if (fine) {
        ok++;
        if (restarted) okAfterRestart++;
      } else failed++;
    };
    // pool.query() traffic, and checkout traffic that releases with the error as apps should.
    const viaQuery = async () => {
      while (running) {
        await p.query('SELECT 1').then(() => tally(true), () => tally(false));
      }
    };
    const ignore = () => {};
    const viaCheckout = async () => {
      while (running) {
        let client: PoolClient | undefined;
        try {
          client = await p.connect();
          // As apps must: a checked-out client whose server goes away emits 'error'.
          client.on('error', ignore);
          await client.query('SELECT pg_sleep(0.005)');
          client.off('error', ignore);
          client.release();
          tally(true);
        } catch (err) {
          client?.off('error', ignore);
          client?.release(err as Error);
          tally(false);
          await sleep(5);
        }
      }
    };
    const workers = [viaQuery(), viaQuery(), viaCheckout(), viaCheckout()];
    const sampler = (async () => {
      while (running) {
        await assertCountsSane();
        await sleep(50);
      }
    })();

    let refusedWhileDown = 0;
    try {
      await eventually(() => ok > 200, 10_000, 'traffic before the restart');
      await server.current.restart(async () => {
        // While the server is down, new connections are refused, and counted as such.
        await sleep(100);
        const c = new t.pg.Client({ connectionString: server.current.url });
        await c.connect().catch(() => refusedWhileDown++);
      });
      restarted = true;
      await eventually(() => okAfterRestart > 200, 20_000, 'traffic after the restart');
    } finally {
      running = false;
      await Promise.all([...workers, sampler]);
    }

    assert.ok(failed > 0, 'the restart did break some queries');
    assert.equal(refusedWhileDown, 1);
    const refusedCounted = (await t.points('pg_pool.connection.errors'))
      .filter((x) => x.attributes['error.type'] === 'ECONNREFUSED' && x.attributes['server.port'] === server.current.port)
      .reduce((sum, x) => sum + (x.value as number), 0);
    assert.ok(refusedCounted >= 1, 'connections refused while the server was down are counted');
    await assertCountsSane();

    // Bookkeeping: every connection the pool opened is either closed (with a reason) or still open.
    const reasons = await closedByReason(name);
    const closed = Object.values(reasons).reduce((a, b) => a + b, 0);
    const created = (await t.histogram('db.client.connection.create_time', of(name)))?.count ?? 0;
    const idle = (await t.value('db.client.connection.count', { ...of(name), 'db.client.connection.state': 'idle' })) ?? -1;
    const used = (await t.value('db.client.connection.count', { ...of(name), 'db.client.connection.state': 'used' })) ?? -1;
    assert.equal(used, 0, 'nothing in use once traffic stops');
    assert.equal(created, closed + idle, `opened ${created} = closed ${closed} ${JSON.stringify(reasons)} + open ${idle}`);
    assert.ok(reasons.broken + reasons.idle_error + reasons.released_with_error >= 1, `the restart's closes are attributed: ${JSON.stringify(reasons)}`);
    assert.equal(reasons.idle_timeout + reasons.max_uses + reasons.max_lifetime + reasons.pool_end, 0, JSON.stringify(reasons));
    assert.equal(appErrors.length, reasons.idle_error, 'each idle connection lost is one error the app saw');
    // Wait and use times were recorded once per successful checkout, never for failed ones.
    const waits = (await t.histogram('db.client.connection.wait_time', of(name)))?.count ?? 0;
    const uses = (await t.histogram('db.client.connection.use_time', of(name)))?.count ?? 0;
    assert.equal(waits, uses, 'every checkout that succeeded was released once');
    assertNoBookkeeping(p);
    await p.end();
    await eventually(async () => (await closedByReason(name)).pool_end === idle, 3000, 'pool_end closes');
  });
});
