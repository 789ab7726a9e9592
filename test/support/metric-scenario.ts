// One scripted pool workload and the values it must export, read back through whichever path the
// harness uses (the producer or the SDK fallback): both paths must report the same numbers.
import assert from 'node:assert/strict';
import type { Harness } from './telemetry';
import { setPoolName } from '../../src/index';

export async function scriptedPoolWorkload(t: Harness, url: string, name: string): Promise<void> {
  const pool = new t.pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 100 });
  setPoolName(pool, name);
  for (let i = 0; i < 3; i++) await pool.query('SELECT 1');
  await assert.rejects(pool.query('SELECT * FROM no_such_table'), /no_such_table/);
  const a = await pool.connect();
  const b = await pool.connect();
  await assert.rejects(pool.connect(), /timeout/);
  a.release();
  b.release();
  const attrs = { 'db.client.connection.pool.name': name };
  const count = async (metric: string, extra = {}) => (await t.histogram(metric, { ...attrs, ...extra }))?.count;
  // 4 pool.query checkouts + 2 connects + 1 that timed out.
  assert.equal(await count('db.client.connection.wait_time'), 6);
  assert.equal(await count('db.client.connection.use_time'), 6);
  // The failed pool.query destroyed its connection (released with error): 1 + 2 opened.
  assert.equal(await count('db.client.connection.create_time'), 3);
  assert.equal(await t.value('db.client.connection.timeouts', attrs), 1);
  assert.equal(await t.value('pg_pool.connection.waits', attrs), 1);
  assert.equal(await t.value('pg_pool.connection.closed', { ...attrs, reason: 'released_with_error' }), 1);
  assert.equal(await t.value('pg_pool.connection.closed', { ...attrs, reason: 'idle_timeout' }), 0);
  const durations = (await t.points('db.client.operation.duration')).filter((p) => p.attributes['db.client.connection.pool.name'] === name);
  const ok = durations.find((p) => p.attributes['error.type'] === undefined && p.attributes['db.collection.name'] === undefined);
  const failed = durations.find((p) => p.attributes['error.type'] === '42P01');
  assert.equal((ok?.value as { count: number } | undefined)?.count, 3);
  assert.equal((failed?.value as { count: number } | undefined)?.count, 1);
  assert.equal(failed?.attributes['db.response.status_code'], '42P01');
  assert.equal(await t.value('db.client.connection.count', { ...attrs, 'db.client.connection.state': 'idle' }), 2);
  assert.equal(await t.value('db.client.connection.count', { ...attrs, 'db.client.connection.state': 'used' }), 0);
  assert.equal(await t.value('db.client.connection.max', attrs), 2);
  assert.equal(await t.value('db.client.connection.pending_requests', attrs), 0);
  await pool.end();
}
