// One span and one duration measurement per query, in every calling form.
import { after, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { instrument } from './support/telemetry';
import { usePostgres } from './support/server';
import { setPoolName } from '../src/index';

const t = instrument({ leakThresholdMs: 0 });
const server = usePostgres();
after(() => t.shutdown());
beforeEach(() => t.spans.reset());

function pool(name: string, extra: Record<string, unknown> = {}) {
  const p = new t.pg.Pool({ connectionString: server.current.url, ...extra });
  setPoolName(p, name);
  return p;
}

describe('query spans', () => {
  it('pool.query: one CLIENT span named by the summary, with the semantic-convention attributes and the wait', async () => {
    const p = pool('spans');
    await p.query('CREATE TABLE IF NOT EXISTS users (id int, email text)');
    t.spans.reset();
    await p.query('SELECT id FROM users WHERE email = $1', ['secret@example.com']);
    const spans = t.spans.getFinishedSpans();
    assert.equal(spans.length, 1, 'no separate pool-connect span');
    const s = spans[0]!;
    assert.equal(s.name, 'SELECT users');
    assert.equal(s.kind, SpanKind.CLIENT);
    assert.equal(s.attributes['db.system.name'], 'postgresql');
    assert.equal(s.attributes['db.namespace'], 'postgres');
    assert.equal(s.attributes['db.operation.name'], 'SELECT');
    assert.equal(s.attributes['db.collection.name'], 'users');
    assert.equal(s.attributes['db.query.summary'], 'SELECT users');
    assert.equal(s.attributes['db.query.text'], 'SELECT id FROM users WHERE email = $1');
    assert.equal(s.attributes['server.address'], '127.0.0.1');
    assert.equal(s.attributes['server.port'], server.current.port);
    assert.equal(s.attributes['db.client.connection.pool.name'], 'spans');
    assert.equal(typeof s.attributes['pg_pool.connection.wait_time'], 'number');
    assert.ok(!JSON.stringify(s.attributes).includes('secret@example.com'), 'parameter values are never recorded');
    await p.end();
  });

  it('replaces inline literals in db.query.text', async () => {
    const p = pool('literals');
    await p.query("SELECT 1 WHERE 'hunter2' <> 'x@example.com' AND 42 > 7");
    const s = t.spans.getFinishedSpans()[0]!;
    assert.equal(s.attributes['db.query.text'], 'SELECT ? WHERE ? <> ? AND ? > ?');
    await p.end();
  });

  it('failures carry error.type and db.response.status_code, on spans and on the duration metric, promise style too', async () => {
    const p = pool('errors');
    await assert.rejects(p.query('SELECT * FROM missing_table'));
    const s = t.spans.getFinishedSpans()[0]!;
    assert.equal(s.attributes['error.type'], '42P01');
    assert.equal(s.attributes['db.response.status_code'], '42P01');
    assert.equal(s.status.code, SpanStatusCode.ERROR);
    const h = await t.histogram('db.client.operation.duration', {
      'db.client.connection.pool.name': 'errors',
      'error.type': '42P01',
    });
    assert.equal(h?.count, 1);
    await p.end();
  });

  it('parents pool.query spans to the caller even when another request releases the connection', async () => {
    const p = pool('parent', { max: 1 });
    const holder = await p.connect();
    const parent = t.tracer.startSpan('request');
    const queued = context.with(trace.setSpan(context.active(), parent), () => p.query('SELECT 1'));
    const other = t.tracer.startSpan('other request');
    await context.with(trace.setSpan(context.active(), other), async () => holder.release());
    await queued;
    parent.end();
    other.end();
    const q = t.spans.getFinishedSpans().find((x) => x.name === 'SELECT')!;
    assert.equal(q.parentSpanContext?.spanId, parent.spanContext().spanId);
    await p.end();
  });

  it('callback, promise and config-callback forms all return what pg returns and are measured', async () => {
    const p = pool('forms');
    const c = await p.connect();
    const r1 = await new Promise<number>((resolve, reject) =>
      c.query('SELECT 1 AS n', (err, res) => (err ? reject(err) : resolve(res.rows[0].n)))
    );
    const r2 = await new Promise<number>((resolve, reject) =>
      c.query('SELECT $1::int AS n', [2], (err, res) => (err ? reject(err) : resolve(res.rows[0].n)))
    );
    const reused = { text: 'SELECT 3 AS n' };
    const r3 = (await c.query(reused)).rows[0].n;
    assert.deepEqual(Object.keys(reused), ['text'], 'the caller\'s config object is left as it was');
    assert.equal((await c.query(reused)).rows[0].n, 3, 'a reused config object still returns a promise');
    const r4 = await new Promise<number>((resolve, reject) => {
      const ret = c.query({
        text: 'SELECT 4 AS n',
        callback: (err: Error | null, res: { rows: { n: number }[] }) => (err ? reject(err) : resolve(res.rows[0]!.n)),
      } as never);
      assert.equal(ret, undefined, 'callback form returns undefined');
    });
    assert.deepEqual([r1, r2, r3, r4], [1, 2, 3, 4]);
    assert.deepEqual(t.spans.getFinishedSpans().map((s) => s.attributes['db.query.text']), ['SELECT ? AS n', 'SELECT $1::int AS n', 'SELECT ? AS n', 'SELECT ? AS n', 'SELECT ? AS n']);
    const h = await t.histogram('db.client.operation.duration', { 'db.client.connection.pool.name': 'forms' });
    assert.equal(h?.count, 5);
    c.release();
    await p.end();
  });

  it('Submittables (pg-cursor, pg-query-stream) are returned as is and measured when done', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Cursor = require('pg-cursor');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const QueryStream = require('pg-query-stream');
    const p = pool('submittable');
    const c = await p.connect();
    const cursor = new Cursor('SELECT generate_series(1, 10) AS n');
    assert.equal(c.query(cursor), cursor);
    const rows = await cursor.read(100);
    assert.equal(rows.length, 10);
    await cursor.close();
    const stream = c.query(new QueryStream('SELECT generate_series(1, 5) AS n'));
    let count = 0;
    for await (const _row of stream) count++;
    assert.equal(count, 5);
    c.release();
    const names = t.spans.getFinishedSpans().map((s) => s.name);
    assert.deepEqual(names, ['SELECT', 'SELECT']);
    await p.end();
  });

  it('keeps query text off spans when PG_POOL_OTEL_QUERY_TEXT=false', async () => {
    t.instrumentation.setConfig({ leakThresholdMs: 0, queryText: false });
    const p = pool('notext');
    await p.query('SELECT 1');
    assert.equal(t.spans.getFinishedSpans()[0]!.attributes['db.query.text'], undefined);
    t.instrumentation.setConfig({ leakThresholdMs: 0 });
    await p.end();
  });
});
