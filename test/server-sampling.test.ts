// pg_stat_activity sampling runs on the package's own monitoring connection and never touches the
// application's: no pool count, timing, event or idle client changes because of it, whether the
// pool is idle, busy, saturated or churning; a failed sample keeps the last good values; the
// monitoring session is opened and closed per sample under its own application_name.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument, eventually } from './support/telemetry';
import { usePostgres } from './support/server';
import { captureLog } from './fixtures/leaks/capture';
import { setLogger, stderrLogger } from '../src/diag';
import { setPoolName } from '../src/index';
import { MONITOR_APPLICATION_NAME } from '../src/server/monitor-connection';
import { FIRST_SAMPLE_DELAY_MS } from '../src/server/server-headroom';
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

async function counts(): Promise<string> {
  const points = await t.points('pg_pool.server.connection.count');
  return JSON.stringify(points.map((p) => [p.attributes.state, p.attributes.owner, p.value]));
}

/** Backends of `applicationName` as the server sees them. */
async function backends(applicationName: string): Promise<number[]> {
  const rows = (await asSuperuser(
    t.pg,
    server.current,
    `SELECT pid FROM pg_stat_activity WHERE application_name = '${applicationName}'`
  )) as { pid: number }[];
  return rows.map((r) => r.pid);
}

describe('server sampling on its own connection', () => {
  before(async () => {
    appUrl = await createAppRole(t.pg, server.current);
  });

  it('samples while every client is checked out: no wait, no new connection of the pool, no checkout', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 2 });
    setPoolName(pool, 'busy');
    const m = { 'db.client.connection.pool.name': 'busy' };
    const [a, b] = await Promise.all([pool.connect(), pool.connect()]);
    try {
      // Both clients checked out, nothing idle: the view stays fresh all the same.
      const first = await waitForSample();
      const second = await waitForSample();
      assert.ok(second > first);
      assert.equal(pool.totalCount, 2, 'the pool opened no connection');
      assert.equal(pool.idleCount, 0);
      assert.equal((await t.histogram('db.client.connection.create_time', m))?.count, 2);
      assert.equal((await t.histogram('db.client.connection.wait_time', m))?.count, 2, 'only the app checkouts');
      assert.equal((await t.value('pg_pool.connection.waits', m)) ?? 0, 0, 'the sampler never made the app queue');
      assert.equal(await failures(), 0);
    } finally {
      a.release();
      b.release();
      await pool.end();
    }
  });

  it('never changes pool.idleCount or the idle list: three idle clients read three throughout', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 3 });
    const clients = await Promise.all([pool.connect(), pool.connect(), pool.connect()]);
    for (const c of clients) c.release();
    const seen = new Map<number, number>();
    const samples = new Set<number>();
    const until = Date.now() + INTERVAL * 12;
    let reads = 0;
    while (Date.now() < until) {
      seen.set(pool.idleCount, (seen.get(pool.idleCount) ?? 0) + 1);
      reads++;
      if (reads % 200 === 0) samples.add(await sampledAt());
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(samples.size >= 5, `sampled throughout (${samples.size} distinct samples)`);
    assert.deepEqual([...seen.keys()], [3], `idleCount over ${reads} reads: ${JSON.stringify([...seen])}`);
    assert.equal(pool.totalCount, 3);
    await pool.end();
  });

  it('a pool whose queued checkouts time out after 1 ms never times out because of sampling', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 1, connectionTimeoutMillis: 2000 });
    setPoolName(pool, 'impatient');
    await pool.query('SELECT 1');
    // From now on a checkout that has to queue fails after 1 ms: only the idle client can serve it.
    pool.options.connectionTimeoutMillis = 1;
    const samples = new Set<number>();
    let errors = 0;
    for (let i = 0; i < 600; i++) {
      try {
        const c = await pool.connect();
        await c.query('SELECT 1');
        c.release();
      } catch {
        errors++;
      }
      await sleep(1);
      if (i % 50 === 0) samples.add(await sampledAt());
    }
    assert.ok(samples.size >= 5, `sampled throughout (${samples.size} distinct samples)`);
    assert.equal(errors, 0, 'no checkout timed out');
    assert.equal((await t.value('db.client.connection.timeouts', { 'db.client.connection.pool.name': 'impatient' })) ?? 0, 0);
    await pool.end();
  });

  it('steady single-connection traffic keeps exactly one connection over a thousand checkouts', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 10, application_name: 'steady' });
    setPoolName(pool, 'steady');
    let connects = 0;
    pool.on('connect', () => connects++);
    let most = 0;
    const samples = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const c = await pool.connect();
      most = Math.max(most, pool.totalCount);
      assert.equal((await c.query('SELECT $1::int AS i', [i])).rows[0].i, i);
      c.release();
      await sleep(1);
      if (i % 50 === 0) samples.add(await sampledAt());
    }
    assert.equal(connects, 1, 'one connection opened');
    assert.equal(most, 1, 'pool.totalCount never above 1');
    assert.equal((await backends('steady')).length, 1, 'one backend of the app on the server');
    assert.ok(samples.size >= 5, `the sampler ran throughout (${samples.size} distinct samples)`);
    const m = { 'db.client.connection.pool.name': 'steady' };
    assert.equal((await t.histogram('db.client.connection.create_time', m))?.count, 1);
    assert.equal((await t.histogram('db.client.connection.wait_time', m))?.count, 1000, 'only the app checkouts');
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
    assert.equal((await backends('saturated')).length, 2, 'two backends on the server');
    assert.equal(await failures(), failedBefore, 'no failed samples');
    await pool.end();
  });

  it('a churning pool (idle timeout shorter than the gaps) is sampled without a failure or a warning', async () => {
    void t.instrumentation.settings; // resolved first, so its log level does not replace the capture
    const log = captureLog();
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 4, idleTimeoutMillis: 20 });
    setPoolName(pool, 'churning');
    let connects = 0;
    pool.on('connect', () => connects++);
    const failedBefore = await failures();
    const samples = new Set<number>();
    try {
      const until = Date.now() + INTERVAL * 15;
      while (Date.now() < until) {
        await Promise.all([pool.query('SELECT 1'), pool.query('SELECT 1')]);
        await sleep(30); // past the idle timeout: the pool closes its connections
        samples.add(await sampledAt());
      }
    } finally {
      setLogger(stderrLogger());
    }
    assert.ok(connects >= 10, `the pool churned (${connects} connections opened)`);
    assert.ok(samples.size >= 8, `sampled throughout (${samples.size} distinct samples)`);
    assert.equal(await failures(), failedBefore, 'no failed sample');
    assert.deepEqual(log.warnings(), [], 'no warning');
    await pool.end();
  });

  it('keeps the last good values when a sample fails, counts the failure, and recovers', async () => {
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 2 });
    await pool.query('SELECT 1');
    await waitForSample();
    const failedBefore = await failures();
    await asSuperuser(t.pg, server.current, 'REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC');
    try {
      // A sample under way at the REVOKE may still succeed: the last good one is known after the first failure.
      await eventually(async () => (await failures()) >= failedBefore + 1, 3000, 'a failed sample');
      const good = await counts();
      const stale = await sampledAt();
      await eventually(async () => (await failures()) >= failedBefore + 3, 3000, 'more failed samples');
      assert.equal(await sampledAt(), stale, 'the timestamp stops at the last good sample');
      assert.equal(await counts(), good, 'the counts keep their last good values, no zeros');
      assert.match(good, /"idle","this_process",1\]/, `and they are real values: ${good}`);
      assert.equal(pool.totalCount, 1, 'the pool is untouched');
      assert.equal((await pool.query('SELECT 2 AS x')).rows[0].x, 2, 'and usable');
    } finally {
      await asSuperuser(t.pg, server.current, 'GRANT SELECT ON pg_catalog.pg_stat_activity TO PUBLIC');
    }
    await waitForSample();
    await pool.end();
  });

  it('the monitoring session is its own: marked, never counted, opened and closed for each sample', async () => {
    // Every login of a monitoring session is written down by the server itself (a login event
    // trigger, PostgreSQL 17+): polling pg_stat_activity can miss a session that lasts a few
    // milliseconds, so it only bounds how many are open at once.
    await asSuperuser(
      t.pg,
      server.current,
      `CREATE TABLE monitor_logins (pid int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
       CREATE FUNCTION log_monitor_login() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
       BEGIN
         IF current_setting('application_name') = '${MONITOR_APPLICATION_NAME}' THEN
           INSERT INTO monitor_logins (pid) VALUES (pg_backend_pid());
         END IF;
       END $$;
       CREATE EVENT TRIGGER log_monitor_login ON login EXECUTE FUNCTION log_monitor_login();`
    );
    const logins = async () => ((await asSuperuser(t.pg, server.current, 'SELECT pid FROM monitor_logins ORDER BY at')) as { pid: number }[]).map((r) => r.pid);
    const pool = new t.pg.Pool({ connectionString: appUrl, max: 2 });
    const c = await pool.connect();
    try {
      await backends(MONITOR_APPLICATION_NAME); // the helper's own target (a superuser client) is known from here on
      await sleep(FIRST_SAMPLE_DELAY_MS + 2 * INTERVAL); // and has been sampled once: found to be the same server
      const before = (await logins()).length;
      let most = 0;
      const until = Date.now() + INTERVAL * 10;
      while (Date.now() < until) {
        most = Math.max(most, (await backends(MONITOR_APPLICATION_NAME)).length);
        await sleep(2);
      }
      const pids = (await logins()).slice(before);
      assert.ok(pids.length >= 3, `a new session per sample (${pids.length} logins in ${INTERVAL * 10} ms)`);
      assert.equal(new Set(pids).size, pids.length, 'each sample on a new backend');
      // Closed after each sample: of those, only the last two (the one just closed may still be
      // exiting when the next connects) can still be there; never more than two open at once.
      const open = await backends(MONITOR_APPLICATION_NAME);
      assert.deepEqual(pids.slice(0, -2).filter((p) => open.includes(p)), [], 'earlier sessions closed');
      assert.ok(most <= 2, `monitoring sessions at once: ${most}`);
      assert.ok(!pids.includes((c as unknown as { processID: number }).processID), 'not one of the pool\u2019s connections');
      // A sample counts the app's one backend (checked out, idle in the pool's sense) and not itself,
      // once the helper's own short-lived clients above (this process's too) have gone: a sample
      // that counted its own session would read one more at every interval.
      const byOwner = async (owner: string) =>
        (await t.points('pg_pool.server.connection.count')).filter((p) => p.attributes.owner === owner).reduce((n, p) => n + (p.value as number), 0);
      await eventually(async () => (await byOwner('this_process')) === 1 && (await byOwner('other')) === 0, 3000, `one backend of this process and none other (at the start: ${await counts()})`);
    } finally {
      c.release();
      await pool.end();
      await asSuperuser(t.pg, server.current, 'DROP EVENT TRIGGER log_monitor_login; DROP FUNCTION log_monitor_login(); DROP TABLE monitor_logins;');
    }
  });

  it('stops sampling when the instrumentation is disabled, resumes after enable at the next use', async () => {
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
    await pool.query('SELECT 1'); // on its idle client: no new connection, the pool says where it goes
    await waitForSample();
    await pool.end();
  });
});
