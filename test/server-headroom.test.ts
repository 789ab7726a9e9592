// Server headroom against a real PostgreSQL with max_connections=20 and reserved_connections=2,
// the instrumented pools connecting as a normal login role: limits, pg_stat_activity counts by
// state and owner, and refused connections (53300) once another process fills the server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument, eventually } from './support/telemetry';
import { usePostgres } from './support/server';
import { setPoolName } from '../src/index';
import { createAppRole, holdConnections } from './fixtures/server/helpers';
import { startPostgres } from '../tools/embedded-postgres';

const t = instrument({ serverSampleIntervalMs: 150, leakThresholdMs: 0, configAdvice: false });
const server = usePostgres({ maxConnections: 20, settings: { reserved_connections: 2 } });
after(() => t.shutdown());

let appUrl = '';

const srv = () => ({ 'server.address': '127.0.0.1', 'server.port': server.current.port });

async function sampledAt(): Promise<number> {
  return (await t.value('pg_pool.server.sample.timestamp', srv())) ?? 0;
}

/** Waits for a sample taken after now, then returns the counts by `state|owner`. */
async function freshCounts(): Promise<Record<string, number>> {
  const since = Date.now() / 1000;
  await eventually(async () => (await sampledAt()) > since, 5000, 'a fresh sample');
  const out: Record<string, number> = {};
  for (const p of await t.points('pg_pool.server.connection.count')) {
    if (p.attributes['server.port'] !== server.current.port) continue;
    out[`${p.attributes.state}|${p.attributes.owner}`] = p.value as number;
  }
  return out;
}

const nonZero = (counts: Record<string, number>) => Object.fromEntries(Object.entries(counts).filter(([, v]) => v !== 0));

describe('server headroom', () => {
  before(async () => {
    appUrl = await createAppRole(t.pg, server.current);
  });

  it('reads max_connections, both reserved settings and the version once, as a normal role', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 3 });
    setPoolName(pool, 'limits');
    const version = (await pool.query('SHOW server_version')).rows[0].server_version as string;
    await eventually(async () => (await t.value('pg_pool.server.max_connections', srv())) !== undefined, 3000, 'limits');
    assert.equal(await t.value('pg_pool.server.max_connections', srv()), 20);
    assert.equal(await t.value('pg_pool.server.superuser_reserved_connections', srv()), 3);
    assert.equal(await t.value('pg_pool.server.reserved_connections', srv()), 2);
    assert.equal(await t.value('pg_pool.server.info', { ...srv(), server_version: version }), 1);
    // The budget query's other half: the pool's max carries the same server labels.
    assert.equal(await t.value('db.client.connection.max', { ...srv(), 'db.client.connection.pool.name': 'limits' }), 3);
    await pool.end();
  });

  it('counts backends by state and owner; other roles\u2019 sessions are "unknown" to a normal role', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 5 });
    setPoolName(pool, 'activity');
    const inTx = await pool.connect();
    await inTx.query('BEGIN');
    await inTx.query('SELECT 1');
    const busy = await pool.connect();
    const sleeping = busy.query('SELECT pg_sleep(1.5)');
    await pool.query('SELECT 1'); // leaves one idle client for the sampler
    // Another process: 3 superuser sessions (one in a transaction) and 2 of the app's role.
    const supers = await holdConnections(server.current.url, 2, 1);
    const peers = await holdConnections(appUrl, 1, 1);
    try {
      await new Promise((r) => setTimeout(r, 300)); // let the idle-in-transaction sessions age
      const counts = nonZero(await freshCounts());
      assert.deepEqual(counts, {
        'active|this_process': 1,
        'idle in transaction|this_process': 1,
        'idle|this_process': 1, // the sampling client itself, idle apart from our query
        'unknown|other': 3,
        'idle|other': 1,
        'idle in transaction|other': 1,
      });
      const oldest = await t.value('pg_pool.server.idle_in_transaction.oldest_age', srv());
      assert.ok(oldest !== undefined && oldest >= 0.3 && oldest < 30, `oldest idle in transaction ${oldest}`);

      // None of this shows up as app queries or checkouts.
      const texts = t.spans.getFinishedSpans().map((s) => String(s.attributes['db.query.text'] ?? s.name));
      assert.ok(!texts.some((x) => /pg_stat_activity|max_connections/.test(x)), texts.join('\n'));
      const m = { 'db.client.connection.pool.name': 'activity' };
      assert.equal((await t.histogram('db.client.connection.wait_time', m))?.count, 3, 'only the three app checkouts');
      assert.equal((await t.histogram('db.client.connection.use_time', m))?.count, 1, 'only the pool.query release');
      const durations = await t.histogram('db.client.operation.duration', { ...m, 'db.operation.name': 'SELECT' });
      assert.equal(durations?.count, 2, 'the two finished app SELECTs');
    } finally {
      await Promise.all([supers.release(), peers.release()]);
      await inTx.query('ROLLBACK');
      inTx.release();
      await sleeping;
      busy.release();
      await pool.end();
    }
  });

  it('counts bare pg.Client backends as this process\u2019s', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 2 });
    await pool.query('SELECT 1');
    const bare = new t.pg.Client(appUrl);
    await bare.connect();
    await bare.query('BEGIN');
    try {
      const counts = nonZero(await freshCounts());
      assert.equal(counts['idle in transaction|this_process'], 1, JSON.stringify(counts));
      assert.equal(counts['idle in transaction|other'], undefined, JSON.stringify(counts));
    } finally {
      await bare.query('ROLLBACK');
      await bare.end();
      await pool.end();
    }
  });

  it('counts the backends of a Knex pool (tarn) as this process\u2019s', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const knex = (require('knex') as typeof import('knex').knex)({ client: 'pg', connection: appUrl, pool: { min: 0, max: 2 } });
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 2 });
    await pool.query('SELECT 1'); // a pg.Pool beside it: both pools' backends are this process's
    const trx = await knex.transaction();
    await trx.raw('SELECT 1');
    try {
      const counts = nonZero(await freshCounts());
      assert.equal(counts['idle in transaction|this_process'], 1, JSON.stringify(counts));
      assert.equal(counts['idle in transaction|other'], undefined, JSON.stringify(counts));
    } finally {
      await trx.rollback();
      await knex.destroy();
      await pool.end();
    }
  });

  it('counts 53300 when the server is full, shows who holds it, and says it is full', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 10 });
    setPoolName(pool, 'refused');
    const held = await Promise.all([pool.connect(), pool.connect()]);
    held[1]!.release();
    const before = nonZero(await freshCounts());
    const ours = (before['idle|this_process'] ?? 0) + (before['active|this_process'] ?? 0);
    assert.equal(ours, 2);
    const others = Object.entries(before).reduce((n, [k, v]) => (k.endsWith('|other') ? n + v : n), 0);
    // A normal role may use max_connections - superuser_reserved - reserved = 15 slots. All but
    // one are taken first: the monitoring session takes that one for its sample and is not counted.
    const fill = 15 - 2 - others - 1;
    const supers = await holdConnections(server.current.url, fill);
    try {
      assert.equal(supers.opened, fill, `superuser sessions opened: ${JSON.stringify(supers.failed)}`);
      const almost = nonZero(await freshCounts());
      assert.equal(almost['unknown|other'], fill + (before['unknown|other'] ?? 0));
      assert.equal(Object.values(almost).reduce((a, b) => a + b, 0), 14, `client backends: ${JSON.stringify(almost)}`);
      assert.equal(await t.value('pg_pool.server.full', srv()), 0);
      const lastOne = await holdConnections(server.current.url, 1);
      try {
        assert.equal(lastOne.opened, 1);
        const again = await pool.connect(); // the idle client: no new connection needed
        const refused = (e: { code?: string }) => e.code === '53300';
        await assert.rejects(pool.connect(), refused);
        await assert.rejects(pool.connect(), refused);
        again.release();
        assert.equal(
          await t.value('pg_pool.connection.errors', { ...srv(), 'error.type': '53300', 'db.client.connection.pool.name': 'refused' }),
          2
        );
        // The monitoring connection is refused too: that is a sample (the server is full), not a failure.
        const failuresBefore = (await t.value('pg_pool.server.sample.failures', srv())) ?? 0;
        await eventually(async () => (await t.value('pg_pool.server.full', srv())) === 1, 3000, 'the server reported full');
        assert.equal((await t.value('pg_pool.server.sample.failures', srv())) ?? 0, failuresBefore, 'a full server is not a failed sample');
        assert.deepEqual(nonZero(await freshCounts()), almost, 'the counts keep the last values that could be read');
      } finally {
        await lastOne.release();
      }
      await eventually(async () => (await t.value('pg_pool.server.full', srv())) === 0, 3000, 'room again');
    } finally {
      await supers.release();
      held[0]!.release();
      await pool.end();
    }
  });

  it('counts 57P03 while the server is shutting down', async () => {
    // A second server, stopped with a "smart" shutdown (SIGTERM): it waits for the open session
    // and refuses new ones with 57P03 meanwhile.
    const other = await startPostgres({ maxConnections: 10 });
    const holder = new t.pg.Client(other.url);
    try {
      await holder.connect();
      holder.on('error', () => {});
      process.kill(other.pid!, 'SIGTERM');
      const pool = new t.pg.Pool({ connectionString: other.url, max: 2 });
      setPoolName(pool, 'shutting-down');
      await eventually(
        async () => (await pool.query('SELECT 1').then(() => '', (e: { code?: string }) => e.code ?? '')) === '57P03',
        5000,
        'a 57P03 refusal'
      );
      const m = { 'server.port': other.port, 'error.type': '57P03', 'db.client.connection.pool.name': 'shutting-down' };
      assert.ok(((await t.value('pg_pool.connection.errors', m)) ?? 0) >= 1);
      await pool.end();
    } finally {
      await holder.end().catch(() => {});
      await other.stop();
    }
  });
});
