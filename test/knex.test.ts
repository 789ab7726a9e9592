// Knex's pool (tarn) holding pg clients, tracked like a pg-pool pool: every pool metric read back at
// scripted moments (checkout, release, a queued waiter, an acquire timeout, destroy), closes by
// reason, connection errors as the pool's, leaks of knex.transaction() and acquireConnection()
// named at this file's lines, names, the census; and a tarn pool of other resources left alone.
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Knex } from 'knex';
import { instrument, eventually } from './support/telemetry';
import { usePostgres, terminateBackend } from './support/server';
import { setPoolName } from '../src/index';
import { captureLog, siteOf } from './fixtures/leaks/capture';
import { byPool, poolReadings } from './support/pool-readings';

const THRESHOLD_MS = 300;
const t = instrument({ leakThresholdMs: THRESHOLD_MS, leakCheckIntervalMs: 20, configAdvice: false, poolBurstCount: 0 });
void t.instrumentation.settings; // settings install the stderr logger: replace it afterwards
let logs = captureLog();
const server = usePostgres();
after(() => t.shutdown());
afterEach(() => logs.clear());

// Loaded after the instrumentation, so that tarn and Knex are patched.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const knex = require('knex') as typeof import('knex').knex;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const tarn = require('tarn') as typeof import('tarn');

const quiet = { warn() {}, error() {}, deprecate() {}, debug() {} };
function db(name: string | undefined, pool: Knex.PoolConfig = {}, extra: Partial<Knex.Config> = {}): Knex {
  const k = knex({ client: 'pg', connection: server.current.url, pool: { min: 0, max: 2, ...pool }, log: quiet, ...extra });
  if (name) setPoolName(k, name);
  return k;
}

const { gauges, count, closed, bareOpen } = poolReadings(t);

describe('Knex (tarn) pool metrics', () => {
  it('reads every pool metric back at checkout, release, a queued waiter, a timeout and destroy', async () => {
    const k = db('knex-a', {}, { acquireConnectionTimeout: 300 });
    const p = byPool('knex-a');
    assert.deepEqual(await gauges('knex-a'), { idle: undefined, used: undefined, pending: undefined }, 'no series before use');

    const c1 = await k.client.acquireConnection();
    assert.deepEqual(await gauges('knex-a'), { idle: 0, used: 1, pending: 0 });
    assert.equal(await t.value('db.client.connection.max', p), 2);
    assert.equal(await t.value('db.client.connection.idle.max', p), 2);
    assert.equal(await t.value('db.client.connection.idle.min', p), 0);
    assert.equal(await count('db.client.connection.create_time', p), 1);
    assert.equal(await count('db.client.connection.wait_time', p), 1);
    assert.equal(await bareOpen(), 0, "the pool's connection is not a bare client");

    const c2 = await k.client.acquireConnection();
    assert.deepEqual(await gauges('knex-a'), { idle: 0, used: 2, pending: 0 });
    const waiter = k.client.acquireConnection();
    await eventually(async () => (await gauges('knex-a')).pending === 1, 2000, 'queued waiter');
    assert.equal(await t.value('pg_pool.connection.waits', p), 1);

    k.client.releaseConnection(c1);
    const c3 = await waiter;
    assert.deepEqual(await gauges('knex-a'), { idle: 0, used: 2, pending: 0 });
    assert.equal(await count('db.client.connection.use_time', p), 1);
    assert.equal(await count('db.client.connection.wait_time', p), 3);
    assert.equal(await count('db.client.connection.create_time', p), 2, 'the waiter got a released connection');

    await assert.rejects(k.client.acquireConnection(), { name: 'KnexTimeoutError' });
    assert.equal(await t.value('db.client.connection.timeouts', p), 1);
    assert.deepEqual(await gauges('knex-a'), { idle: 0, used: 2, pending: 0 });

    k.client.releaseConnection(c2);
    k.client.releaseConnection(c3);
    assert.deepEqual(await gauges('knex-a'), { idle: 2, used: 0, pending: 0 });
    assert.equal(await count('db.client.connection.use_time', p), 3);

    await k.destroy();
    assert.deepEqual(await gauges('knex-a'), { idle: 0, used: 0, pending: 0 }, 'a destroyed pool reads zero');
    assert.equal(await t.value('db.client.connection.max', p), 0);
    assert.equal(await closed('knex-a', 'pool_end'), 2);
    assert.equal(await bareOpen(), 0);
  });

  it('counts closes by reason: idle reap, a connection that failed validation, pool destroy', async () => {
    const k = db('knex-reap', { idleTimeoutMillis: 100, reapIntervalMillis: 50 });
    await k.raw('SELECT 1');
    await eventually(async () => (await closed('knex-reap', 'idle_timeout')) === 1, 3000, 'idle reap');
    assert.deepEqual(await gauges('knex-reap'), { idle: 0, used: 0, pending: 0 });
    await k.destroy();

    const b = db('knex-broken');
    const c = await b.client.acquireConnection();
    const pid = (c as { processID: number }).processID;
    b.client.releaseConnection(c);
    await terminateBackend(t.pg, server.current.url, pid);
    await eventually(() => (c as { __knex__disposed?: unknown }).__knex__disposed !== undefined, 3000, 'Knex marks it disposed');
    await b.raw('SELECT 1'); // validation fails: tarn closes it and opens another
    assert.equal(await closed('knex-broken', 'broken'), 1);
    assert.equal(await count('db.client.connection.create_time', byPool('knex-broken')), 2);
    await b.destroy();
    assert.equal(await closed('knex-broken', 'pool_end'), 1);
  });

  it("counts a failed connect as the pool's connection error, by SQLSTATE, and not as a bare client's", async () => {
    const url = new URL(server.current.url);
    url.pathname = '/no_such_database';
    const k = knex({ client: 'pg', connection: url.toString(), pool: { min: 0, max: 1 }, log: quiet, acquireConnectionTimeout: 2000 });
    setPoolName(k, 'knex-bad');
    await assert.rejects(k.raw('SELECT 1'), /does not exist/);
    assert.equal(await t.value('pg_pool.connection.errors', { ...byPool('knex-bad'), 'error.type': '3D000' }), 1);
    const unnamed = (await t.points('pg_pool.connection.errors')).filter((x) => x.attributes['error.type'] === '3D000' && !x.attributes['db.client.connection.pool.name']);
    assert.deepEqual(unnamed, [], 'not counted without the pool');
    await k.destroy();
  });

  it('tells a bare client that connects while the pool is creating from the connection the pool creates', async () => {
    const k = db('knex-race');
    const bare = new t.pg.Client({ connectionString: server.current.url });
    // Both connect at once: Knex constructs its client after an await, so neither is on the other's stack.
    const [conn] = await Promise.all([k.client.acquireConnection(), bare.connect()]);
    assert.equal(await bareOpen(), 1, 'the bare client only');
    assert.deepEqual(await gauges('knex-race'), { idle: 0, used: 1, pending: 0 });
    assert.equal(await count('db.client.connection.create_time', byPool('knex-race')), 1);
    k.client.releaseConnection(conn);
    await bare.end();
    assert.equal(await bareOpen(), 0);
    await k.destroy();
  });

  it('names the pool: setPoolName on the Knex instance, else application_name, else host:port/database', async () => {
    const { hostname, port } = new URL(server.current.url);
    const named = knex({ client: 'pg', connection: { connectionString: server.current.url, application_name: 'orders-api' }, log: quiet });
    const plain = db(undefined);
    await named.raw('SELECT 1');
    await plain.raw('SELECT 1');
    assert.equal(await t.value('db.client.connection.max', byPool('orders-api')), 10, "Knex's default max");
    assert.equal(await t.value('db.client.connection.max', byPool(`${hostname}:${port}/postgres`)), 2);
    await named.destroy();
    await plain.destroy();
  });

  it('leaves a tarn pool of other resources alone: no series, not in the census', async () => {
    const before = await t.collect();
    const created = await t.value('pg_pool.pools.created');
    const pool = new tarn.Pool({ create: () => ({ id: Math.random() }), destroy: () => {}, min: 0, max: 2 });
    const r = await pool.acquire().promise;
    pool.release(r);
    await pool.acquire().promise.then((x) => pool.release(x));
    await pool.destroy();
    const after = await t.collect();
    const names = (ms: typeof before) => new Set(ms.flatMap((m) => m.dataPoints.map((d) => String(d.attributes['db.client.connection.pool.name']))));
    assert.deepEqual(names(after), names(before));
    assert.equal(await t.value('pg_pool.pools.created'), created);
  });
});

describe('Knex leaks and misuse', () => {
  const SELF = __filename;

  it('reports a knex.transaction() never committed at the line that started it, then its return', async () => {
    const k = db('knex-leak');
    const trx = await k.transaction(); // SITE:knexTransaction
    await trx.raw('SELECT 1');
    await eventually(() => logs.warnings().length > 0, 3000, 'leak warning');
    const [warning] = logs.warnings();
    assert.match(warning!, /possible connection leak: pool "knex-leak" checkout held for \d+\.\d s/);
    assert.ok(warning!.includes(siteOf(SELF, 'knexTransaction')), warning);
    assert.ok(!/node_modules\/(knex|tarn|pg)\//.test(warning!), 'library frames removed');
    assert.equal(await t.value('pg_pool.checkout.leaked', byPool('knex-leak')), 1);
    assert.equal(await t.value('pg_pool.checkout.leak_detections', byPool('knex-leak')), 1);

    await trx.commit();
    await eventually(async () => (await t.value('pg_pool.checkout.leaked', byPool('knex-leak'))) === 0, 2000, 'returned');
    assert.equal(await t.value('pg_pool.checkout.leak_returns', byPool('knex-leak')), 1);
    assert.match(logs.infos().join('\n'), /returned after \d+\.\d s: pool "knex-leak" taken at .*knex\.test\.ts:\d+/);
    await k.destroy();
  });

  it('reports an acquireConnection() never released at its line, and a release inside a transaction', async () => {
    const k = db('knex-raw');
    const conn = await k.client.acquireConnection(); // SITE:knexAcquire
    await eventually(() => logs.warnings().some((w) => w.includes('knex-raw')), 3000, 'leak warning');
    assert.ok(logs.warnings()[0]!.includes(siteOf(SELF, 'knexAcquire')), logs.warnings()[0]);

    await (conn as { query(sql: string): Promise<unknown> }).query('BEGIN');
    k.client.releaseConnection(conn);
    assert.equal(await t.value('pg_pool.checkout.released_in_transaction', { ...byPool('knex-raw'), transaction_status: 'in_transaction' }), 1);
    assert.ok(logs.warnings().some((w) => w.includes('client released inside a transaction') && w.includes('knex-raw')));
    await k.raw('ROLLBACK'); // the next borrower inherited it
    await k.destroy();
  });

  it('shows a Knex instance per request in the census, with the line that created it', async () => {
    t.instrumentation.setConfig({ ...t.instrumentation.getConfig(), poolBurstCount: 3 });
    void t.instrumentation.settings; // re-resolved: it installs the stderr logger again
    logs = captureLog();
    const before = (await t.value('pg_pool.pools.created')) ?? 0;
    for (let i = 0; i < 4; i++) {
      const k = db(`per-request-${i}`); // SITE:knexPerRequest
      await k.raw('SELECT 1');
      await k.destroy();
    }
    assert.equal((await t.value('pg_pool.pools.created'))! - before, 4);
    const warning = logs.warnings().find((w) => w.includes('pools were created'));
    assert.ok(warning, logs.lines.join('\n'));
    assert.ok(warning.includes(`${SELF}:`), warning);
  });
});
