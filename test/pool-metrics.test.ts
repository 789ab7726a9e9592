// Pool gauges and checkout histograms against a real server, including the incumbent
// instrumentation's defects as regression tests (see shared notes: two pools, stale counts
// after release, blind to the wait queue, counts after end, error.type on promise failures).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument, eventually } from './support/telemetry';
import { usePostgres } from './support/server';
import { setPoolName } from '../src/index';

const t = instrument({ leakThresholdMs: 0 });
const server = usePostgres({ maxConnections: 40 });
after(() => t.shutdown());

const COUNT = 'db.client.connection.count';

async function counts(pool: string) {
  const idle = await t.value(COUNT, { 'db.client.connection.pool.name': pool, 'db.client.connection.state': 'idle' });
  const used = await t.value(COUNT, { 'db.client.connection.pool.name': pool, 'db.client.connection.state': 'used' });
  const pending = await t.value('db.client.connection.pending_requests', { 'db.client.connection.pool.name': pool });
  return { idle, used, pending };
}

function newPool(name: string, extra: Record<string, unknown> = {}) {
  const pool = new t.pg.Pool({ connectionString: server.current.url, ...extra });
  setPoolName(pool, name);
  return pool;
}

describe('pool gauges', () => {
  it('two pools report independent, correct counts at every step', async () => {
    const a = newPool('a', { max: 2, connectionTimeoutMillis: 300 });
    const b = newPool('b', { max: 3 });

    const a1 = await a.connect();
    assert.deepEqual(await counts('a'), { idle: 0, used: 1, pending: 0 });
    assert.deepEqual(await counts('b'), { idle: undefined, used: undefined, pending: undefined }, 'b unseen so far');

    const b1 = await b.connect();
    const b2 = await b.connect();
    assert.deepEqual(await counts('b'), { idle: 0, used: 2, pending: 0 });
    assert.deepEqual(await counts('a'), { idle: 0, used: 1, pending: 0 });

    b1.release();
    assert.deepEqual(await counts('b'), { idle: 1, used: 1, pending: 0 }, 'counts are current right after release');

    const a2 = await a.connect();
    // a is full: two queued waiters must show as pending
    const w1 = a.connect();
    const w2 = a.connect();
    await eventually(async () => (await counts('a')).pending === 2, 2000, 'two waiters');
    assert.deepEqual(await counts('a'), { idle: 0, used: 2, pending: 2 });
    assert.deepEqual(await counts('b'), { idle: 1, used: 1, pending: 0 });

    // one waiter times out (connectionTimeoutMillis 300), the other is served by a release
    a1.release();
    const got = await w1;
    await assert.rejects(w2, /timeout exceeded when trying to connect/);
    assert.deepEqual(await counts('a'), { idle: 0, used: 2, pending: 0 });
    assert.equal(await t.value('db.client.connection.timeouts', { 'db.client.connection.pool.name': 'a' }), 1);
    assert.equal(await t.value('db.client.connection.timeouts', { 'db.client.connection.pool.name': 'b' }), 0, 'counters start at zero');
    assert.equal(await t.value('pg_pool.connection.waits', { 'db.client.connection.pool.name': 'a' }), 2);

    got.release();
    a2.release();
    b2.release();
    assert.deepEqual(await counts('a'), { idle: 2, used: 0, pending: 0 });
    assert.deepEqual(await counts('b'), { idle: 2, used: 0, pending: 0 });

    await a.end();
    assert.deepEqual(await counts('a'), { idle: 0, used: 0, pending: 0 }, 'an ended pool drops to zero');
    assert.equal(await t.value('db.client.connection.max', { 'db.client.connection.pool.name': 'a' }), 0);
    assert.deepEqual(await counts('b'), { idle: 2, used: 0, pending: 0 }, 'ending a leaves b alone');
    await b.end();
    for (const p of await t.points(COUNT)) assert.ok((p.value as number) >= 0, 'never negative');
  });

  it('after one pool.query the connection is idle, not used', async () => {
    const p = newPool('after-query', { max: 4 });
    await p.query('SELECT 1');
    assert.deepEqual(await counts('after-query'), { idle: 1, used: 0, pending: 0 });
    await p.end();
  });

  it('reports max, idle.max and idle.min from the pool options', async () => {
    const p = newPool('limits', { max: 7, min: 2 });
    await p.query('SELECT 1');
    const m = { 'db.client.connection.pool.name': 'limits' };
    assert.equal(await t.value('db.client.connection.max', m), 7);
    assert.equal(await t.value('db.client.connection.idle.max', m), 7);
    assert.equal(await t.value('db.client.connection.idle.min', m), 2);
    const points = await t.points('db.client.connection.max');
    const attrs = points.find((x) => x.attributes['db.client.connection.pool.name'] === 'limits')!.attributes;
    assert.equal(attrs['server.address'], '127.0.0.1');
    assert.equal(attrs['server.port'], server.current.port);
    assert.equal(attrs['db.namespace'], 'postgres');
    await p.end();
  });

  it('records wait_time for every checkout, use_time for every release, create_time per new connection', async () => {
    const p = newPool('timing', { max: 1 });
    const m = { 'db.client.connection.pool.name': 'timing' };
    const c = await p.connect();
    const queued = p.connect();
    await new Promise((r) => setTimeout(r, 50));
    c.release();
    const c2 = await queued;
    await new Promise((r) => setTimeout(r, 30));
    c2.release();
    const wait = await t.histogram('db.client.connection.wait_time', m);
    assert.equal(wait?.count, 2, 'both checkouts, the zero-wait one included');
    assert.ok(wait!.max! >= 0.04, `queued checkout waited ~50ms, max=${wait?.max}`);
    const use = await t.histogram('db.client.connection.use_time', m);
    assert.equal(use?.count, 2);
    assert.ok(use!.max! >= 0.04);
    const create = await t.histogram('db.client.connection.create_time', m);
    assert.equal(create?.count, 1, 'one connection opened');
    assert.equal(await t.value('pg_pool.connection.waits', m), 1, 'only the second checkout queued');
    // sub-millisecond resolution: the first bucket boundary is 100 µs
    assert.equal(wait?.buckets.boundaries[0], 0.0001);
    await p.end();
  });

  it('names pools host:port/database by default, application_name when given, with a suffix for duplicates', async () => {
    const p1 = new t.pg.Pool({ connectionString: server.current.url });
    const p2 = new t.pg.Pool({ connectionString: server.current.url });
    const p3 = new t.pg.Pool({ connectionString: server.current.url, application_name: 'orders' });
    await Promise.all([p1.query('SELECT 1'), p2.query('SELECT 1'), p3.query('SELECT 1')]);
    const names = new Set((await t.points('db.client.connection.max')).map((x) => x.attributes['db.client.connection.pool.name']));
    const base = `127.0.0.1:${server.current.port}/postgres`;
    assert.ok(names.has(base), [...names].join(','));
    assert.ok(names.has(`${base}#2`), [...names].join(','));
    assert.ok(names.has('orders'));
    await Promise.all([p1.end(), p2.end(), p3.end()]);
  });
});
