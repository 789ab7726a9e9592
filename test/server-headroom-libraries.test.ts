// Server headroom for every pool kind, each alone in the process: a service whose only pool is
// Knex's (tarn) or Sequelize's (sequelize-pool) gets max_connections and its own backends counted,
// and sampling stops (the series go) once the last pool targeting the server is gone. Two
// addresses of one server are one server.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument, eventually } from './support/telemetry';
import { usePostgres } from './support/server';

const INTERVAL = 100;
const t = instrument({ serverSampleIntervalMs: INTERVAL, leakThresholdMs: 0, configAdvice: false, poolBurstCount: 0 });
const server = usePostgres({ maxConnections: 20 });
after(() => t.shutdown());

// Loaded after the instrumentation, so that tarn and sequelize-pool are patched.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const knex = require('knex') as typeof import('knex').knex;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Sequelize } = require('sequelize') as typeof import('sequelize');

const srv = () => ({ 'server.address': '127.0.0.1', 'server.port': server.current.port });

async function inTransactionHere(): Promise<number> {
  const since = Date.now() / 1000;
  await eventually(async () => ((await t.value('pg_pool.server.sample.timestamp', srv())) ?? 0) > since, 3000, 'a fresh sample');
  return (await t.value('pg_pool.server.connection.count', { ...srv(), state: 'idle in transaction', owner: 'this_process' })) ?? -1;
}

const gone = () => eventually(async () => (await t.points('pg_pool.server.max_connections')).length === 0, INTERVAL * 12, 'the server series gone with the last pool');

describe('server headroom for every pool kind', () => {
  it('a Knex-only service gets max_connections and its backends; the series go with its pool', async () => {
    assert.equal((await t.points('pg_pool.server.max_connections')).length, 0, 'nothing before the first connection');
    const db = knex({ client: 'pg', connection: server.current.url, pool: { min: 0, max: 2 } });
    const trx = await db.transaction();
    await trx.raw('SELECT 1');
    try {
      await eventually(async () => (await t.value('pg_pool.server.max_connections', srv())) === 20, 2000, 'max_connections');
      assert.equal(await inTransactionHere(), 1);
    } finally {
      await trx.rollback();
      await db.destroy();
    }
    await gone();
  });

  it('a Sequelize-only service gets max_connections and its backends; the series go with its pool', async () => {
    const s = new Sequelize(server.current.url, { logging: false, pool: { max: 2, min: 0 } });
    const trx = await s.transaction();
    await s.query('SELECT 1', { transaction: trx });
    try {
      await eventually(async () => (await t.value('pg_pool.server.max_connections', srv())) === 20, 2000, 'max_connections');
      assert.equal(await inTransactionHere(), 1);
    } finally {
      await trx.rollback();
      await s.close();
    }
    await gone();
  });

  it('a bare pg.Client alone is enough', async () => {
    const c = new t.pg.Client(server.current.url);
    await c.connect();
    await c.query('BEGIN');
    try {
      await eventually(async () => (await t.value('pg_pool.server.max_connections', srv())) === 20, 2000, 'max_connections');
      assert.equal(await inTransactionHere(), 1);
    } finally {
      await c.query('ROLLBACK');
      await c.end();
    }
    await gone();
  });

  it('two addresses of one server are one server, whose backends are all this process\u2019s', async () => {
    const a = new t.pg.Pool({ connectionString: server.current.url, max: 2 });
    const b = new t.pg.Pool({ connectionString: server.current.url.replace('127.0.0.1', 'localhost'), max: 2 });
    const [ca, cb] = await Promise.all([a.connect(), b.connect()]);
    await ca.query('BEGIN');
    await cb.query('BEGIN');
    try {
      await eventually(async () => (await t.points('pg_pool.server.max_connections')).length > 0, 2000, 'max_connections');
      await new Promise((r) => setTimeout(r, INTERVAL * 3)); // both targets sampled by now
      const servers = (await t.points('pg_pool.server.max_connections')).map((p) => `${p.attributes['server.address']}:${p.attributes['server.port']}`);
      assert.equal(servers.length, 1, `one server: ${servers.join(', ')}`);
      const port = server.current.port;
      const only = (await t.points('pg_pool.server.connection.count')).filter((p) => p.attributes['server.port'] === port && p.value !== 0);
      assert.deepEqual(
        only.map((p) => `${p.attributes.state}|${p.attributes.owner}=${p.value}`),
        ['idle in transaction|this_process=2'],
        'both pools\u2019 backends, as this process\u2019s'
      );
    } finally {
      await ca.query('ROLLBACK');
      await cb.query('ROLLBACK');
      ca.release();
      cb.release();
      await Promise.all([a.end(), b.end()]);
    }
  });
});
