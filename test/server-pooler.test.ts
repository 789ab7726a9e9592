// Server headroom through a real PgBouncer (transaction mode) in front of two PostgreSQL servers:
// the monitoring query runs through it (simple protocol), each database's real server is reported
// under its own address with its own max_connections, the pooler is detected and said once, its
// backends are counted with owner "unknown" (never a false 0 for this process), and a pool on
// PgBouncer's admin console is left alone after one INFO line.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument, eventually } from './support/telemetry';
import { startPostgres, type PostgresServer } from '../tools/embedded-postgres';
import { startPgBouncer, type PgBouncer } from './support/pgbouncer';
import { captureLog, type CapturedLog } from './fixtures/leaks/capture';
import { setLogger, stderrLogger } from '../src/diag';
import { setPoolName } from '../src/index';

const INTERVAL = 200;
const t = instrument({ serverSampleIntervalMs: INTERVAL, leakThresholdMs: 0, configAdvice: false });
let one: PostgresServer;
let two: PostgresServer;
let bouncer: PgBouncer;
let log: CapturedLog;

before(async () => {
  one = await startPostgres({ maxConnections: 20 });
  two = await startPostgres({ maxConnections: 30 });
  bouncer = await startPgBouncer({ databases: { one: { server: one }, two: { server: two } }, poolMode: 'transaction' });
  void t.instrumentation.settings; // resolved first, so its log level does not replace the capture
  log = captureLog();
});
after(async () => {
  setLogger(stderrLogger());
  await t.shutdown();
  await bouncer?.stop();
  await one?.stop();
  await two?.stop();
});

const real = (s: PostgresServer) => ({ 'server.address': '127.0.0.1', 'server.port': s.port });

async function counts(s: PostgresServer): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const p of await t.points('pg_pool.server.connection.count')) {
    if (p.attributes['server.port'] !== s.port || p.value === 0) continue;
    out[`${p.attributes.state}|${p.attributes.owner}`] = p.value as number;
  }
  return out;
}

describe('through PgBouncer', () => {
  it('transaction mode: the real server\u2019s limits and backends, owner unknown, the pooler said once', async () => {
    const pool = new t.pg.Pool({ connectionString: bouncer.url('one'), max: 4 });
    setPoolName(pool, 'via-bouncer');
    // Two transactions left open pin two server backends to this process.
    const pinned = await Promise.all([pool.connect(), pool.connect()]);
    for (const c of pinned) await c.query('BEGIN; SELECT 1');
    try {
      await eventually(async () => (await t.value('pg_pool.server.max_connections', real(one))) === 20, 3000, 'max_connections of the server behind');
      assert.equal(await t.value('pg_pool.pooler.info', { 'server.address': '127.0.0.1', 'server.port': bouncer.port }), 1);
      assert.equal(
        await t.value('pg_pool.server.max_connections', { 'server.port': bouncer.port }),
        undefined,
        'no server is reported under the pooler\u2019s address'
      );
      const since = Date.now() / 1000;
      await eventually(async () => ((await t.value('pg_pool.server.sample.timestamp', real(one))) ?? 0) > since, 3000, 'a fresh sample');
      const c = await counts(one);
      assert.ok((c['idle in transaction|unknown'] ?? 0) >= 2, `the pinned backends are counted: ${JSON.stringify(c)}`);
      assert.deepEqual(
        Object.keys(c).filter((k) => !k.endsWith('|unknown')),
        [],
        'behind a pooler no backend is claimed as this process\u2019s or another\u2019s'
      );
      // The pool's own series stay under the address the app dials.
      assert.equal(await t.value('db.client.connection.max', { 'db.client.connection.pool.name': 'via-bouncer', 'server.port': bouncer.port }), 4);
      const poolerLines = log.infos().filter((l) => l.includes('is a connection pooler'));
      assert.equal(poolerLines.length, 1, log.lines.join('\n'));
      assert.match(poolerLines[0]!, new RegExp(`127\\.0\\.0\\.1:${bouncer.port}/one .* in front of PostgreSQL 127\\.0\\.0\\.1:${one.port}`));
    } finally {
      for (const c of pinned) {
        await c.query('ROLLBACK');
        c.release();
      }
      await pool.end();
    }
  });

  it('two databases PgBouncer routes to two servers are two servers', async () => {
    const a = new t.pg.Pool({ connectionString: bouncer.url('one'), max: 2 });
    const b = new t.pg.Pool({ connectionString: bouncer.url('two'), max: 2 });
    await Promise.all([a.query('SELECT 1'), b.query('SELECT 1')]);
    await eventually(async () => (await t.value('pg_pool.server.max_connections', real(two))) === 30, 3000, 'the second server');
    assert.equal(await t.value('pg_pool.server.max_connections', real(one)), 20, 'the first keeps its own');
    const ports = (await t.points('pg_pool.server.max_connections')).map((p) => p.attributes['server.port']).sort();
    assert.deepEqual(ports, [one.port, two.port].sort());
    assert.equal((await t.points('pg_pool.pooler.info')).length, 1, 'one pooler address');
    assert.equal(log.warnings().length, 0, log.lines.join('\n'));
    await Promise.all([a.end(), b.end()]);
  });

  it('a pool on the admin console runs as it does bare: no crash, one INFO line, no warning per interval', async () => {
    const admin = new t.pg.Pool({ connectionString: bouncer.url('pgbouncer'), max: 1 });
    const failures = async () => (await t.value('pg_pool.server.sample.failures', { 'server.address': '127.0.0.1', 'server.port': bouncer.port })) ?? 0;
    const failedBefore = await failures();
    for (let i = 0; i < 10; i++) {
      const rows = (await admin.query('SHOW POOLS')).rows as { database: string }[];
      assert.ok(rows.some((r) => r.database === 'one'), JSON.stringify(rows));
      await new Promise((r) => setTimeout(r, INTERVAL / 2));
    }
    await eventually(() => log.infos().some((l) => l.includes('server sampling is off for')), 2000, 'the INFO line');
    await new Promise((r) => setTimeout(r, INTERVAL * 3)); // more intervals: the line is not repeated
    const off = log.infos().filter((l) => l.includes('server sampling is off for'));
    assert.equal(off.length, 1, log.lines.join('\n'));
    assert.match(off[0]!, new RegExp(`127\\.0\\.0\\.1:${bouncer.port}/pgbouncer`));
    assert.equal(log.warnings().length, 0, log.lines.join('\n'));
    assert.equal(await failures(), failedBefore, 'a refusal is not a failed sample');
    assert.equal(admin.totalCount, 1);
    await admin.end();
  });
});
