// pg's native client (pg.native, on libpq through pg-native) under the package: the app reads
// pg.native (the package never does), and its pools get the same metrics, spans, leak detection
// and close reasons. What the native client cannot give is documented in docs/metrics.md
// ("The native client") and checked here, so that the documentation stays true.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument, eventually } from './support/telemetry';
import { usePostgres, terminateBackend } from './support/server';
import { captureLog } from './fixtures/leaks/capture';
import { setPoolName } from '../src/index';
import { checkoutsOutstanding } from '../src/testing';
import { freePort } from '../tools/embedded-postgres';

const t = instrument({ leakThresholdMs: 150, leakCheckIntervalMs: 25, serverSampleIntervalMs: 100, configAdvice: false });
const server = usePostgres({ maxConnections: 12 });
after(() => t.shutdown());

void t.instrumentation.settings; // settings install the stderr logger: replace it afterwards
const { lines: logged } = captureLog();

/** pg.native, read by the app. pg-native is a devDependency: if it is missing this fails, it does not skip. */
function native() {
  const n = t.pg.native;
  assert.ok(n, 'pg.native loads (pg-native and libpq are installed by .ci/run and npm ci)');
  return n;
}
type NativePool = InstanceType<ReturnType<typeof native>['Pool']>;

function pool(name: string, extra: Record<string, unknown> = {}): NativePool {
  const p = new (native().Pool)({ connectionString: server.current.url, ...extra });
  setPoolName(p, name);
  return p;
}
const of = (name: string) => ({ 'db.client.connection.pool.name': name });

const terminate = (pid: number) => terminateBackend(t.pg, server.current.url, pid);

describe('the native client', () => {
  it('is really native: no JavaScript protocol connection on its clients', async () => {
    const p = pool('native-check');
    const c = await p.connect();
    assert.equal((c as unknown as { connection?: unknown }).connection, undefined);
    assert.ok((c as unknown as { native?: unknown }).native, 'a pg-native client underneath');
    c.release();
    await p.end();
  });

  it('pool.query, checkout and callback forms: same results, a span each, pool metrics', async () => {
    const p = pool('native');
    assert.equal((await p.query('SELECT $1::int AS n', [7])).rows[0].n, 7);
    const c = await p.connect();
    assert.equal((await c.query("SELECT 'secret@example.com' AS e")).rows[0].e, 'secret@example.com');
    c.release();
    const viaCallback = await new Promise<number>((resolve, reject) =>
      p.query('SELECT 2 AS n', (err: Error | undefined, r: { rows: { n: number }[] }) => (err ? reject(err) : resolve(r.rows[0]!.n)))
    );
    assert.equal(viaCallback, 2);

    const spans = t.spans.getFinishedSpans().filter((s) => s.attributes['db.client.connection.pool.name'] === 'native');
    assert.deepEqual(
      spans.map((s) => s.attributes['db.query.text']),
      ['SELECT $1::int AS n', 'SELECT ? AS e', 'SELECT ? AS n']
    );
    for (const s of spans) {
      assert.equal(s.attributes['db.system.name'], 'postgresql');
      assert.equal(s.attributes['server.port'], server.current.port);
      assert.ok(!JSON.stringify(s.attributes).includes('secret@example.com'), 'literals never reach a span');
    }
    const m = of('native');
    assert.equal((await t.histogram('db.client.connection.wait_time', m))?.count, 3);
    assert.equal((await t.histogram('db.client.connection.use_time', m))?.count, 3);
    assert.equal((await t.histogram('db.client.connection.create_time', m))?.count, 1);
    assert.equal(await t.value('db.client.connection.count', { ...m, 'db.client.connection.state': 'idle' }), 1);
    assert.equal(await t.value('db.client.connection.count', { ...m, 'db.client.connection.state': 'used' }), 0);
    await p.end();
  });

  it('a failed query carries its SQLSTATE', async () => {
    const p = pool('native-err');
    await assert.rejects(p.query('SELECT * FROM no_such_table'), /does not exist/);
    const span = t.spans.getFinishedSpans().find((s) => s.attributes['db.client.connection.pool.name'] === 'native-err');
    assert.equal(span?.attributes['error.type'], '42P01');
    await p.end();
  });

  it('leaked checkouts are reported with the line that took them', async () => {
    const p = pool('native-leak');
    const c = await p.connect(); // the leak: held past the threshold
    await eventually(() => logged.some((l) => l.includes('possible connection leak: pool "native-leak"')), 3000, 'leak report');
    const report = logged.find((l) => l.includes('pool "native-leak"'))!;
    assert.match(report, /native-client\.test\.ts:\d+/);
    assert.equal(checkoutsOutstanding().filter((x) => x.pool === 'native-leak').length, 1);
    c.release();
    assert.equal(checkoutsOutstanding().filter((x) => x.pool === 'native-leak').length, 0);
    await p.end();
  });

  it('a release inside a transaction is counted', async () => {
    const p = pool('native-tx');
    const c = await p.connect();
    await c.query('BEGIN');
    c.release();
    await eventually(
      async () => (await t.value('pg_pool.checkout.released_in_transaction', { ...of('native-tx'), transaction_status: 'in_transaction' })) === 1,
      2000,
      'release in transaction counted'
    );
    await p.end();
  });

  it('close reasons: an idle connection terminated is idle_error, then the pool recovers; pool_end', async () => {
    const p = pool('native-close');
    const errors: Error[] = [];
    p.on('error', (e: Error) => errors.push(e));
    const pid = (await p.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    await terminate(pid);
    await eventually(async () => (await t.value('pg_pool.connection.closed', { ...of('native-close'), reason: 'idle_error' })) === 1, 3000, 'idle_error');
    assert.equal(errors.length, 1, 'the app saw the error, as without the package');
    assert.equal((await p.query('SELECT 1 AS n')).rows[0].n, 1);
    await p.end();
    await eventually(async () => (await t.value('pg_pool.connection.closed', { ...of('native-close'), reason: 'pool_end' })) === 1, 3000, 'pool_end');
  });

  it('connection errors are counted with the error.type the JavaScript client gives (read from libpq\'s message)', async () => {
    const errorsOf = async (match: (a: Record<string, unknown>) => boolean) =>
      (await t.points('pg_pool.connection.errors')).filter((x) => match(x.attributes)).map((x) => [x.attributes['error.type'], x.value]);

    const badPassword = new (native().Pool)({ connectionString: server.current.url.replace(':postgres@', ':wrong@') });
    setPoolName(badPassword, 'native-badpw');
    await assert.rejects(badPassword.query('SELECT 1'), /password authentication failed/);
    assert.deepEqual(await errorsOf((a) => a['db.client.connection.pool.name'] === 'native-badpw'), [['28P01', 1]]);
    await badPassword.end();

    const port = await freePort();
    const refused = new (native().Client)({ host: '127.0.0.1', port, user: 'x', database: 'x' });
    await assert.rejects(refused.connect(), /Connection refused/);
    assert.deepEqual(await errorsOf((a) => a['server.port'] === port), [['ECONNREFUSED', 1]]);

    // The server full: JavaScript clients take every slot, then a native pool asks for one.
    const fillers: InstanceType<typeof t.pg.Client>[] = [];
    for (;;) {
      const c = new t.pg.Client({ connectionString: server.current.url });
      try {
        await c.connect();
        fillers.push(c);
      } catch (err) {
        assert.equal((err as { code?: string }).code, '53300');
        break;
      }
    }
    try {
      const full = pool('native-full');
      await assert.rejects(full.query('SELECT 1'), /too many clients/);
      assert.deepEqual(await errorsOf((a) => a['db.client.connection.pool.name'] === 'native-full'), [['53300', 1]]);
      await full.end();
    } finally {
      await Promise.all(fillers.map((c) => c.end()));
    }
  });

  it('server sampling works on native pools, but cannot tell their connections apart (no backend pid)', async () => {
    const p = pool('native-sampled');
    const held = await Promise.all([p.connect(), p.connect()]);
    held[1]!.release(); // one idle client for the sampler
    const srv = { 'server.address': '127.0.0.1', 'server.port': server.current.port };
    const since = Date.now() / 1000;
    await eventually(async () => ((await t.value('pg_pool.server.sample.timestamp', srv)) ?? 0) > since, 3000, 'a sample');
    const counts = (await t.points('pg_pool.server.connection.count')).filter((x) => x.attributes['server.port'] === server.current.port);
    const mine = counts.filter((x) => x.attributes.owner === 'this_process').reduce((s, x) => s + (x.value as number), 0);
    const all = counts.reduce((s, x) => s + (x.value as number), 0);
    assert.ok(all >= 2, `the server's connections are counted: ${all}`);
    assert.equal(mine, 0, 'without processID the native connections count as other (documented)');
    held[0]!.release();
    await p.end();
  });

  it('logged no internal error', () => {
    assert.deepEqual(logged.filter((l) => /^(ERROR|WARN) internal error/.test(l)), []);
  });
});
