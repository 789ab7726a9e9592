// pg_stat_activity sampling never costs the app: it never opens a connection nor makes pg-pool
// queue (a checkout that would have got the sampled client waits for it), a saturated pool is
// sampled on a released client so the view stays fresh, a failed sample keeps the last good values,
// and a borrowed client goes back to the pool in every case, pool.end() included.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument, eventually } from './support/telemetry';
import { usePostgres } from './support/server';
import { setPoolName } from '../src/index';
import { borrowIdleClient, lendOnRelease, lentIdleCount, type Lease } from '../src/server/idle-lease';
import { internalQuery, InternalQueryTimeout } from '../src/server/internal-query';
import type { PgPool } from '../src/pg-types';
import { asSuperuser, createAppRole } from './fixtures/server/helpers';

const INTERVAL = 100;
const t = instrument({ serverSampleIntervalMs: INTERVAL, leakThresholdMs: 0, configAdvice: false });
const server = usePostgres({ maxConnections: 20 });
after(() => t.shutdown());

let appUrl = '';
const srv = () => ({ 'server.address': '127.0.0.1', 'server.port': server.current.port });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sampledAt = async () => (await t.value('pg_pool.server.sample.timestamp', srv())) ?? 0;
const failures = async () => (await t.value('pg_pool.server.sample.failures', srv())) ?? 0;

async function waitForSample(): Promise<number> {
  const since = Date.now() / 1000;
  await eventually(async () => (await sampledAt()) > since, 3000, 'a fresh sample');
  return sampledAt();
}

/** Borrows like the sampler does; retried, since the sampler itself may hold the idle client. */
async function borrow(pool: unknown): Promise<Lease> {
  let lease: Lease | undefined;
  await eventually(
    () => {
      const got = borrowIdleClient(pool as PgPool);
      if (typeof got === 'object') lease = got;
      return lease !== undefined;
    },
    2000,
    'an idle client to borrow'
  );
  return lease as Lease;
}

async function counts(): Promise<string> {
  const points = await t.points('pg_pool.server.connection.count');
  return JSON.stringify(points.map((p) => [p.attributes.state, p.attributes.owner, p.value]));
}

let role: Promise<string> | undefined;
const useAppRole = () =>
  before(async () => {
    appUrl = await (role ??= createAppRole(t.pg, server.current));
  });

describe('server sampling', () => {
  useAppRole();

  it('skips the sample while every client is checked out: no wait, no new connection, no checkout', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 2 });
    setPoolName(pool, 'busy');
    const m = { 'db.client.connection.pool.name': 'busy' };
    const [a, b] = await Promise.all([pool.connect(), pool.connect()]);
    a.release();
    await waitForSample();
    // Checked out in the same tick as seeing it idle: no sample can hold it at that moment.
    await eventually(() => pool.idleCount === 1, 1000, 'the client back from the sampler');
    const c = await pool.connect();
    // Both clients checked out: nothing to borrow.
    const frozen = await sampledAt();
    await sleep(INTERVAL * 5);
    assert.equal(await sampledAt(), frozen, 'stale while busy: the timestamp does not advance');
    assert.equal(pool.totalCount, 2, 'no connection opened');
    assert.equal((await t.histogram('db.client.connection.create_time', m))?.count, 2);
    assert.equal((await t.histogram('db.client.connection.wait_time', m))?.count, 3, 'only the app checkouts');
    assert.equal((await t.value('pg_pool.connection.waits', m)) ?? 0, 0, 'the sampler never made the app queue');
    assert.equal(await failures(), 0, 'a skipped sample is not a failure');
    c.release();
    assert.ok((await waitForSample()) > frozen, 'sampled again once a client is idle');
    b.release();
    await pool.end();
  });

  it('keeps the last good values when a sample fails, counts the failure, and recovers', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 2 });
    await pool.query('SELECT 1');
    await waitForSample();
    const good = await counts();
    const failedBefore = await failures();
    await asSuperuser(t.pg, server.current, 'REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC');
    try {
      await eventually(async () => (await failures()) >= failedBefore + 2, 3000, 'failed samples');
      const stale = await sampledAt();
      await sleep(INTERVAL * 3);
      assert.equal(await sampledAt(), stale, 'the timestamp stops at the last good sample');
      assert.equal(await counts(), good, 'the counts keep their last good values, no zeros');
      assert.equal(pool.totalCount, 1, 'the sampling client went back to the pool');
      assert.equal((await pool.query('SELECT 2 AS x')).rows[0].x, 2, 'and is still usable');
    } finally {
      await asSuperuser(t.pg, server.current, 'GRANT SELECT ON pg_catalog.pg_stat_activity TO PUBLIC');
    }
    await waitForSample();
    await pool.end();
  });

  it('a borrowed client is never handed out; a waiter and pool.end() are served when it comes back', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 1 });
    await pool.query('SELECT 1');
    const lease = await borrow(pool);
    assert.equal(pool.idleCount, 0, 'off the idle list while borrowed');
    assert.equal(lentIdleCount(pool), 1, 'counted as lent, for the pool gauges');
    let served = false;
    const waiter = pool.connect().then((c) => {
      served = true;
      return c;
    });
    await sleep(50);
    assert.equal(served, false, 'the pool cannot hand out the borrowed client');
    assert.equal(pool.totalCount, 1, 'nor open another one (max 1)');
    lease.giveBack(false);
    const client = await waiter;
    assert.equal(lentIdleCount(pool), 0);
    assert.equal(client, lease.client, 'the waiter gets the client back');
    client.release();

    const again = await borrow(pool);
    let ended = false;
    const ending = pool.end().then(() => (ended = true));
    await sleep(50);
    assert.equal(ended, false, 'pool.end() waits for the borrowed client');
    again.giveBack(false);
    await ending;
    assert.equal(pool.totalCount, 0);
  });

  it('never borrows a client released inside a transaction', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 1 });
    const c = await pool.connect();
    await c.query('BEGIN');
    c.release();
    assert.equal(borrowIdleClient(pool as unknown as PgPool), 'busy');
    const d = await pool.connect();
    await d.query('ROLLBACK');
    d.release();
    (await borrow(pool)).giveBack(false);
    await pool.end();
  });

  it('closes a borrowed client whose monitoring query hangs instead of returning it', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 2, idleTimeoutMillis: 300 });
    setPoolName(pool, 'hung');
    await pool.query('SELECT 1');
    const spansBefore = t.spans.getFinishedSpans().length;
    const lease = await borrow(pool);
    await assert.rejects(internalQuery(lease.client, 'SELECT pg_sleep(5)', [], 100), InternalQueryTimeout);
    lease.giveBack(true);
    await eventually(() => pool.totalCount === 0, 3000, 'the hung client closed');
    await sleep(500); // past its idle timer, which must not close it a second time
    const closed = (await t.points('pg_pool.connection.closed')).filter((p) => p.attributes['db.client.connection.pool.name'] === 'hung');
    assert.equal(closed.reduce((n, p) => n + (p.value as number), 0), 1, 'closed once');
    assert.equal(t.spans.getFinishedSpans().length, spansBefore, 'monitoring queries make no spans');
    assert.equal((await pool.query('SELECT 3 AS x')).rows[0].x, 3, 'the pool opens a fresh client on demand');
    await pool.end();
  });

  it('stops sampling when the instrumentation is disabled, resumes after enable and a checkout', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 2 });
    await pool.query('SELECT 1');
    await waitForSample();
    t.instrumentation.disable();
    try {
      const frozen = await sampledAt();
      assert.ok(frozen > 0);
      await pool.query('SELECT 1'); // pool events still fire while disabled
      await sleep(INTERVAL * 4);
      assert.equal(await sampledAt(), frozen, 'no samples while disabled');
    } finally {
      t.instrumentation.enable();
    }
    await pool.query('SELECT 1');
    await waitForSample();
    await pool.end();
  });
});

/** Backends of `applicationName` as the server sees them. */
async function backends(applicationName: string): Promise<number> {
  const rows = (await asSuperuser(
    t.pg,
    server.current,
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = '${applicationName}'`
  )) as { n: number }[];
  return rows[0]!.n;
}

describe('server sampling is invisible to the pool', () => {
  useAppRole();
  it('steady single-connection traffic keeps exactly one connection over a thousand checkouts', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 10, application_name: 'steady' });
    setPoolName(pool, 'steady');
    let connects = 0;
    pool.on('connect', () => connects++);
    let most = 0;
    let metLent = 0;
    const samples = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      // The sampler holds the pool's only connection right now: bare pg would have handed it out.
      if (lentIdleCount(pool) > 0) metLent++;
      const c = await pool.connect();
      most = Math.max(most, pool.totalCount);
      assert.equal((await c.query('SELECT $1::int AS i', [i])).rows[0].i, i);
      c.release();
      // An idle gap, as between requests: the sampler's timer finds the connection idle here.
      await sleep(1);
      if (i % 50 === 0) samples.add(await sampledAt());
    }
    assert.equal(connects, 1, 'one connection opened');
    assert.equal(most, 1, 'pool.totalCount never above 1');
    assert.equal(await backends('steady'), 1, 'one backend on the server');
    assert.ok(samples.size >= 5, `the sampler ran throughout (${samples.size} distinct samples)`);
    assert.ok(metLent > 0, 'some checkouts came while the sampler held the connection');
    const m = { 'db.client.connection.pool.name': 'steady' };
    assert.equal((await t.histogram('db.client.connection.create_time', m))?.count, 1);
    assert.equal((await t.histogram('db.client.connection.wait_time', m))?.count, 1000, 'only the app checkouts');
    await pool.end();
  });

  it('a checkout that would have got the lent client waits for it instead of opening one', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 10 });
    await pool.query('SELECT 1');
    const lent = await borrow(pool);
    let served = false;
    const checkout = pool.connect().then((c) => ((served = true), c));
    const viaQuery = pool.query('SELECT 2 AS x');
    await sleep(50);
    assert.equal(served, false, 'waits while the client is lent');
    assert.equal(pool.totalCount, 1, 'no connection opened for it');
    assert.equal(pool.waitingCount, 0, 'nor a request queued in pg-pool');
    assert.equal(lent.wanted(), true, 'the sampler is told to give the client back');
    lent.giveBack(false);
    const client = await checkout;
    assert.equal(client, lent.client, 'the first checkout gets the lent client');
    client.release();
    assert.equal((await viaQuery).rows[0].x, 2);
    // Bare pg, with one idle client and these two concurrent checkouts, opens a second connection.
    assert.ok(pool.totalCount <= 2, `no more connections than bare pg (${pool.totalCount})`);
    await pool.end();
  });

  it('a client released to queued requests is lent first; they get it after, in their order', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 1 });
    const c = await pool.connect();
    const order: string[] = [];
    const first = pool.connect().then((x) => (order.push('first'), x));
    const second = pool.connect().then((x) => (order.push('second'), x));
    assert.equal(pool.waitingCount, 2);
    let lease: Lease | undefined;
    let claimed = false;
    // First in line: the instrumentation's own sampler may claim an overdue sample on this release too.
    pool.prependOnceListener('release', (err: unknown, client: unknown) => {
      claimed = lendOnRelease(pool as unknown as PgPool, client as never, err, (l) => (lease = l));
    });
    c.release();
    assert.equal(claimed, true);
    await eventually(() => lease !== undefined, 1000, 'the lease');
    await sleep(30);
    assert.deepEqual(order, [], 'neither queued request has it while it is lent');
    assert.equal(pool.waitingCount, 2, 'both still queued, in pg-pool');
    assert.equal(pool.totalCount, 1, 'no connection opened');
    assert.equal(lease!.wanted(), true);
    lease!.giveBack(false);
    (await first).release();
    (await second).release();
    assert.deepEqual(order, ['first', 'second'], 'served in their order');
    assert.equal(pool.totalCount, 1);
    await pool.end();
  });

  it('a saturated pool keeps a fresh server view (at most two intervals old) without opening a connection', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 2, application_name: 'saturated' });
    setPoolName(pool, 'saturated');
    let connects = 0;
    pool.on('connect', () => connects++);
    await Promise.all([pool.query('SELECT 1'), pool.query('SELECT 1')]);
    const failedBefore = await failures();
    let stop = false;
    const load = Array.from({ length: 6 }, async () => {
      while (!stop) await pool.query('SELECT pg_sleep(0.005)');
    });
    const ages: number[] = [];
    try {
      await eventually(() => pool.waitingCount > 0, 2000, 'requests queued');
      // Let a sample taken before the pool filled up grow old first.
      await sleep(INTERVAL * 3);
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        await sleep(INTERVAL / 2);
        const waiting = pool.waitingCount;
        const now = Date.now() / 1000;
        const at = await sampledAt();
        if (waiting > 0 && pool.idleCount === 0) ages.push(now - at);
      }
    } finally {
      stop = true;
      await Promise.all(load);
    }
    assert.ok(ages.length >= 10, `saturated during the checks (${ages.length})`);
    const worst = Math.max(...ages);
    assert.ok(worst <= (2 * INTERVAL) / 1000, `sample age while saturated at most two intervals (worst ${worst.toFixed(3)} s)`);
    assert.equal(connects, 2, 'no connection opened beyond max');
    assert.equal(await backends('saturated'), 2, 'two backends on the server');
    assert.equal(await failures(), failedBefore, 'no failed samples');
    await pool.end();
  });
});
