// Close reasons, connection errors and bare clients against a real server.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument, eventually } from './support/telemetry';
import { usePostgres, terminateBackend } from './support/server';
import { freePort } from '../tools/embedded-postgres';
import { setPoolName } from '../src/index';

const t = instrument({ leakThresholdMs: 0 });
const server = usePostgres({ maxConnections: 40 });
after(() => t.shutdown());

function pool(name: string, extra: Record<string, unknown> = {}) {
  const p = new t.pg.Pool({ connectionString: server.current.url, ...extra });
  setPoolName(p, name);
  return p;
}
const closed = (name: string, reason: string) =>
  t.value('pg_pool.connection.closed', { 'db.client.connection.pool.name': name, reason });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('close reasons', () => {
  it('idle_timeout, then pool_end', async () => {
    const p = pool('idle', { idleTimeoutMillis: 50 });
    await p.query('SELECT 1');
    await eventually(async () => (await closed('idle', 'idle_timeout')) === 1, 3000, 'idle close');
    await p.query('SELECT 1');
    await p.end();
    await eventually(async () => (await closed('idle', 'pool_end')) === 1, 3000, 'pool_end close');
  });

  it('max_uses', async () => {
    const p = pool('uses', { maxUses: 2 });
    await p.query('SELECT 1');
    await p.query('SELECT 1');
    await eventually(async () => (await closed('uses', 'max_uses')) === 1, 3000, 'max_uses close');
    await p.end();
  });

  it('released_with_error: release(err) and any pool.query error', async () => {
    const p = pool('relerr');
    const c = await p.connect();
    c.release(new Error('bad state'));
    await assert.rejects(p.query('SELECT * FROM no_such_table'), /does not exist/);
    await eventually(async () => (await closed('relerr', 'released_with_error')) === 2, 3000, 'released_with_error');
    await p.end();
  });

  it('client_end and broken', async () => {
    const p = pool('ends');
    const c = await p.connect();
    await c.end();
    c.release();
    const d = await p.connect();
    const pid = (d as unknown as { processID: number }).processID;
    d.on('error', () => {}); // the app's own handler for its checked-out client
    await terminateBackend(t.pg, server.current.url, pid);
    await eventually(() => (d as unknown as { _queryable: boolean })._queryable === false, 3000, 'backend gone');
    d.release();
    await eventually(async () => (await closed('ends', 'client_end')) === 1 && (await closed('ends', 'broken')) === 1, 3000, 'closes');
    await p.end();
  });

  it('idle_error when an idle connection is terminated, and the app error handler still runs', async () => {
    const p = pool('idlerr');
    const errors: unknown[] = [];
    p.on('error', (e) => errors.push(e));
    const c = await p.connect();
    const pid = (c as unknown as { processID: number }).processID;
    c.release();
    await terminateBackend(t.pg, server.current.url, pid);
    await eventually(async () => (await closed('idlerr', 'idle_error')) === 1, 3000, 'idle_error close');
    assert.equal(errors.length, 1, 'the application saw the error as without the package');
    const counts = await t.points('db.client.connection.count');
    for (const x of counts) assert.ok((x.value as number) >= 0);
    await p.query('SELECT 1'); // recovers
    await p.end();
  });

  it('max_lifetime, and pg-pool\'s synthetic acquire of an expired idle client is not a checkout', async () => {
    const p = pool('life', { maxLifetimeSeconds: 1 });
    await p.query('SELECT 1');
    const m = { 'db.client.connection.pool.name': 'life' };
    const before = (await t.histogram('db.client.connection.wait_time', m))?.count;
    await eventually(async () => (await closed('life', 'max_lifetime')) === 1, 4000, 'max_lifetime close');
    assert.equal((await t.histogram('db.client.connection.wait_time', m))?.count, before, 'no extra checkout');
    assert.equal((await t.histogram('db.client.connection.use_time', m))?.count, before, 'no extra use');
    await p.end();
  });
});

describe('connection errors', () => {
  it('counts a bad password as 28P01 for pool and bare client alike', async () => {
    const url = server.current.url.replace(':postgres@', ':wrong@');
    const p = new t.pg.Pool({ connectionString: url });
    setPoolName(p, 'badpw');
    await assert.rejects(p.query('SELECT 1'), /password authentication failed/);
    const c = new t.pg.Client({ connectionString: url });
    await assert.rejects(c.connect(), /password authentication failed/);
    const points = (await t.points('pg_pool.connection.errors')).filter((x) => x.attributes['error.type'] === '28P01');
    const total = points.reduce((s, x) => s + (x.value as number), 0);
    assert.equal(total, 2);
    assert.ok(points.some((x) => x.attributes['db.client.connection.pool.name'] === 'badpw'));
    await p.end();
  });

  it('counts ECONNREFUSED when nothing listens', async () => {
    const port = await freePort();
    const c = new t.pg.Client({ host: '127.0.0.1', port, user: 'x', database: 'x' });
    await new Promise<void>((resolve) => c.connect((err: Error | null) => { assert.ok(err); resolve(); }));
    assert.equal(await t.value('pg_pool.connection.errors', { 'error.type': 'ECONNREFUSED', 'server.port': port }), 1);
  });

  it('counts a pool connect timeout as timeout', async () => {
    // connectionTimeoutMillis shorter than any real connect: pg-pool destroys the socket.
    const p = new t.pg.Pool({ connectionString: server.current.url, connectionTimeoutMillis: 1 });
    setPoolName(p, 'slowconnect');
    await assert.rejects(p.query('SELECT 1'), /timeout/);
    assert.equal(await t.value('db.client.connection.timeouts', { 'db.client.connection.pool.name': 'slowconnect' }), 1);
    assert.equal(
      await t.value('pg_pool.connection.errors', { 'db.client.connection.pool.name': 'slowconnect', 'error.type': 'timeout' }),
      1
    );
    await p.end();
  });
});

describe('bare clients', () => {
  it('are counted as open connections of the process until they end', async () => {
    const m = { 'server.port': server.current.port };
    const a = new t.pg.Client({ connectionString: server.current.url });
    const b = new t.pg.Client({ connectionString: server.current.url });
    await a.connect();
    await new Promise<void>((resolve, reject) => b.connect((err: Error | null) => (err ? reject(err) : resolve())));
    assert.equal(await t.value('pg_pool.client.connection.count', m), 2);
    await a.end();
    await b.end();
    await sleep(10);
    assert.equal(await t.value('pg_pool.client.connection.count', m), 0);
  });
});
