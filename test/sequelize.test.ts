// Sequelize's pool (sequelize-pool) holding pg clients, tracked like a pg-pool pool: every pool
// metric read back at scripted moments (checkout, release, a queued waiter, an acquire timeout,
// close), closes by reason, connection errors as the pool's, an unmanaged transaction leaked and
// named at this file's line, release inside a transaction (and the 'destroy' action), names
// (replication's read and write pools); and a sequelize-pool of other resources left alone.
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Sequelize as SequelizeType, Options } from 'sequelize';
import { instrument, eventually } from './support/telemetry';
import { usePostgres, terminateBackend } from './support/server';
import { setPoolName } from '../src/index';
import { captureLog, siteOf } from './fixtures/leaks/capture';
import { byPool, poolReadings } from './support/pool-readings';

const t = instrument({ leakThresholdMs: 300, leakCheckIntervalMs: 20, configAdvice: false, poolBurstCount: 0 });
void t.instrumentation.settings;
let logs = captureLog();
const server = usePostgres();
after(() => t.shutdown());
afterEach(() => logs.clear());

// Loaded after the instrumentation, so that sequelize-pool is patched.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Sequelize, QueryTypes } = require('sequelize') as typeof import('sequelize');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Pool: ResourcePool } = require('sequelize-pool') as typeof import('sequelize-pool');

type Conn = { processID: number; query(sql: string): Promise<unknown>; _invalid?: boolean };

function orm(name: string | undefined, options: Options = {}): SequelizeType {
  const s = new Sequelize(server.current.url, { logging: false, ...options, pool: { max: 2, min: 0, ...options.pool } });
  if (name) setPoolName(s, name);
  return s;
}
const manager = (s: SequelizeType) =>
  (s as unknown as { connectionManager: { getConnection(o?: object): Promise<Conn>; releaseConnection(c: Conn): void } }).connectionManager;

const { gauges, count, closed, bareOpen } = poolReadings(t);

describe('Sequelize (sequelize-pool) pool metrics', () => {
  it('reads every pool metric back at checkout, release, a queued waiter, a timeout and close', async () => {
    const s = orm('seq-a', { pool: { acquire: 300 } });
    const cm = manager(s);
    const p = byPool('seq-a');
    assert.deepEqual(await gauges('seq-a'), { idle: undefined, used: undefined, pending: undefined }, 'no series before use');

    const c1 = await cm.getConnection();
    assert.deepEqual(await gauges('seq-a'), { idle: 0, used: 1, pending: 0 });
    assert.equal(await t.value('db.client.connection.max', p), 2);
    assert.equal(await t.value('db.client.connection.idle.min', p), 0);
    assert.equal(await count('db.client.connection.create_time', p), 1);
    assert.equal(await count('db.client.connection.wait_time', p), 1);
    assert.equal(await bareOpen(), 0, "the pool's connection is not a bare client (nor is Sequelize's closed version check)");

    const c2 = await cm.getConnection();
    const waiter = cm.getConnection();
    await eventually(async () => (await gauges('seq-a')).pending === 1, 2000, 'queued waiter');
    assert.deepEqual(await gauges('seq-a'), { idle: 0, used: 2, pending: 1 });
    assert.equal(await t.value('pg_pool.connection.waits', p), 1);

    cm.releaseConnection(c1);
    const c3 = await waiter;
    assert.deepEqual(await gauges('seq-a'), { idle: 0, used: 2, pending: 0 });
    assert.equal(await count('db.client.connection.use_time', p), 1);
    assert.equal(await count('db.client.connection.wait_time', p), 3);

    await assert.rejects(cm.getConnection(), { name: 'SequelizeConnectionAcquireTimeoutError' });
    assert.equal(await t.value('db.client.connection.timeouts', p), 1);
    assert.deepEqual(await gauges('seq-a'), { idle: 0, used: 2, pending: 0 });

    cm.releaseConnection(c2);
    cm.releaseConnection(c3);
    assert.deepEqual(await gauges('seq-a'), { idle: 2, used: 0, pending: 0 });
    await s.close();
    assert.deepEqual(await gauges('seq-a'), { idle: 0, used: 0, pending: 0 }, 'a closed pool reads zero');
    assert.equal(await closed('seq-a', 'pool_end'), 2);
  });

  it('counts closes by reason: idle sweep, maxUses, a connection the server killed, close', async () => {
    const idle = orm('seq-idle', { pool: { idle: 100, evict: 50 } });
    await idle.query('SELECT 1');
    await eventually(async () => (await closed('seq-idle', 'idle_timeout')) === 1, 3000, 'idle sweep');
    await idle.close();

    const used = orm('seq-uses', { pool: { maxUses: 2 } as Options['pool'] });
    await used.query('SELECT 1');
    await used.query('SELECT 1');
    await eventually(async () => (await closed('seq-uses', 'max_uses')) === 1, 2000, 'closed at maxUses');
    await used.close();

    const killed = orm('seq-killed');
    const cm = manager(killed);
    const c = await cm.getConnection();
    cm.releaseConnection(c);
    await terminateBackend(t.pg, server.current.url, c.processID);
    await eventually(async () => (await closed('seq-killed', 'idle_error')) === 1, 3000, 'idle client killed');
    assert.deepEqual(await gauges('seq-killed'), { idle: 0, used: 0, pending: 0 });
    await killed.close();
  });

  it("counts a failed connect as the pool's connection error, by SQLSTATE", async () => {
    const url = new URL(server.current.url);
    url.pathname = '/no_such_database';
    // databaseVersion given: Sequelize skips its version check, so the pool makes the first connection.
    const s = new Sequelize(url.toString(), { logging: false, databaseVersion: '18.0.0', pool: { max: 1 } } as Options);
    setPoolName(s, 'seq-bad');
    await assert.rejects(s.query('SELECT 1'), /does not exist/);
    assert.equal(await t.value('pg_pool.connection.errors', { ...byPool('seq-bad'), 'error.type': '3D000' }), 1);
    await s.close();
  });

  it("names the pools: setPoolName on the instance (replication's read and write pools), else application_name", async () => {
    const { hostname, port, username, password } = new URL(server.current.url);
    const target = { host: hostname, port: Number(port), username, password, database: 'postgres' };
    const replicated = orm(undefined, { replication: { read: [target], write: target } });
    setPoolName(replicated, 'orders');
    await replicated.query('SELECT 1', { type: QueryTypes.SELECT }); // the read pool
    await replicated.query('SELECT 1'); // the write pool
    assert.equal(await t.value('db.client.connection.max', byPool('orders:read')), 2);
    assert.equal(await t.value('db.client.connection.max', byPool('orders:write')), 2);
    await replicated.close();

    const app = orm(undefined, { dialectOptions: { application_name: 'billing' } });
    await app.query('SELECT 1');
    assert.equal(await t.value('db.client.connection.max', byPool('billing')), 2);
    await app.close();
  });

  it('leaves a sequelize-pool of other resources alone: no series, not in the census', async () => {
    const before = await t.collect();
    const created = await t.value('pg_pool.pools.created');
    const pool = new ResourcePool({ name: 'things', create: async () => ({ id: 1 }), destroy: async () => {}, validate: () => true, max: 2, min: 0 });
    const r = await pool.acquire();
    pool.release(r);
    await pool.drain();
    await pool.destroyAllNow();
    const after = await t.collect();
    const names = (ms: typeof before) => new Set(ms.flatMap((m) => m.dataPoints.map((d) => String(d.attributes['db.client.connection.pool.name']))));
    assert.deepEqual(names(after), names(before));
    assert.equal(await t.value('pg_pool.pools.created'), created);
  });
});

describe('Sequelize leaks and misuse', () => {
  it('reports an unmanaged transaction never committed at the line that started it, then its return', async () => {
    const s = orm('seq-leak');
    const trx = await s.transaction(); // SITE:sequelizeTransaction
    await s.query('SELECT 1', { transaction: trx });
    await eventually(() => logs.warnings().length > 0, 3000, 'leak warning');
    const [warning] = logs.warnings();
    assert.match(warning!, /possible connection leak: pool "seq-leak" checkout held for \d+\.\d s/);
    assert.ok(warning!.includes(siteOf(__filename, 'sequelizeTransaction')), warning);
    assert.ok(!/node_modules\/(sequelize|sequelize-pool|pg)\//.test(warning!), 'library frames removed');
    assert.equal(await t.value('pg_pool.checkout.leaked', byPool('seq-leak')), 1);
    await trx.commit();
    assert.equal(await t.value('pg_pool.checkout.leaked', byPool('seq-leak')), 0);
    assert.equal(await t.value('pg_pool.checkout.leak_returns', byPool('seq-leak')), 1);
    await s.close();
  });

  it("counts a release inside a transaction; with 'destroy' the pool closes that client instead", async () => {
    const s = orm('seq-tx');
    const cm = manager(s);
    const a = await cm.getConnection();
    await a.query('BEGIN');
    cm.releaseConnection(a);
    const status = { ...byPool('seq-tx'), transaction_status: 'in_transaction' };
    assert.equal(await t.value('pg_pool.checkout.released_in_transaction', status), 1);
    assert.deepEqual(await gauges('seq-tx'), { idle: 1, used: 0, pending: 0 }, 'reported, and put back');
    const again = await cm.getConnection();
    await again.query('ROLLBACK');
    cm.releaseConnection(again);

    t.instrumentation.setConfig({ ...t.instrumentation.getConfig(), releaseInTransaction: 'destroy' });
    void t.instrumentation.settings;
    logs = captureLog();
    try {
      const b = await cm.getConnection();
      await b.query('BEGIN');
      cm.releaseConnection(b);
      assert.equal(await t.value('pg_pool.checkout.released_in_transaction', status), 2);
      assert.equal(await closed('seq-tx', 'released_with_error'), 1);
      assert.deepEqual(await gauges('seq-tx'), { idle: 0, used: 0, pending: 0 }, 'closed, not put back');
      const [row] = await s.query('SELECT now() = statement_timestamp() AS fresh', { type: QueryTypes.SELECT });
      assert.deepEqual(row, { fresh: true }, 'the next checkout is outside any transaction');
    } finally {
      t.instrumentation.setConfig({ ...t.instrumentation.getConfig(), releaseInTransaction: 'report' });
      void t.instrumentation.settings;
      logs = captureLog();
    }
    await s.close();
  });

  it('counts a Sequelize instance per request in the census', async () => {
    const before = (await t.value('pg_pool.pools.created')) ?? 0;
    for (let i = 0; i < 3; i++) {
      const s = orm(`seq-per-request-${i}`);
      await s.query('SELECT 1');
      await s.close();
    }
    assert.equal((await t.value('pg_pool.pools.created'))! - before, 3);
    assert.equal(await t.value('pg_pool.pools'), 0, 'closed instances are not alive');
  });
});
