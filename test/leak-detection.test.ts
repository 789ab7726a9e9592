// Leaked checkouts in-process: reported once with the application frame that took them, on the
// trace, in the gauges and counters; "returned" when released; long-lived clients never reported.
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SpanStatusCode } from '@opentelemetry/api';
import { instrument, eventually } from './support/telemetry';
import { usePostgres } from './support/server';
import { markLongLived, setPoolName } from '../src/index';
import { captureLog, siteOf } from './fixtures/leaks/capture';
import { takeAndForget, takeForListen } from './fixtures/leaks/sites';
import { LEAK_EVENT, LEAK_SPAN } from '../src/leaks/leak-trace';
import { checkoutsOutstanding } from '../src/testing';

const THRESHOLD_MS = 300;
const t = instrument({ leakThresholdMs: THRESHOLD_MS, leakCheckIntervalMs: 20, configAdvice: false });
void t.instrumentation.settings; // settings install the stderr logger: replace it afterwards
const logs = captureLog();
const server = usePostgres();
after(() => t.shutdown());
afterEach(() => {
  logs.clear();
  t.spans.reset();
});

const SITES = join(__dirname, 'fixtures', 'leaks', 'sites.ts');

function pool(name: string) {
  const p = new t.pg.Pool({ connectionString: server.current.url, max: 4 });
  setPoolName(p, name);
  return p;
}

const byPool = (name: string) => ({ 'db.client.connection.pool.name': name });

describe('leak detection', () => {
  it('reports a checkout held past the threshold once, naming pool, age and the line that took it', async () => {
    const p = pool('leaky');
    const client = await takeAndForget(p);
    await eventually(() => logs.warnings().length > 0, 3000, 'leak warning');
    const [warning] = logs.warnings();
    assert.match(warning!, /possible connection leak: pool "leaky" checkout held for \d+\.\d s/);
    assert.ok(warning!.includes(siteOf(SITES, 'takeAndForget')), warning);
    assert.ok(warning!.includes(__filename), 'the calling test frame is listed too');
    assert.ok(!/node_modules\/pg(-pool)?\//.test(warning!), 'pg and pg-pool frames removed');
    assert.ok(!warning!.includes('/src/pool/'), "the package's own frames removed");
    assert.ok(!warning!.includes('node:internal'));

    assert.equal(await t.value('pg_pool.checkout.leaked', byPool('leaky')), 1);
    assert.equal(await t.value('pg_pool.checkout.leak_detections', byPool('leaky')), 1);
    assert.ok((await t.value('pg_pool.checkout.oldest_age', byPool('leaky')))! >= THRESHOLD_MS / 1000);

    await new Promise((r) => setTimeout(r, 100));
    assert.equal(logs.warnings().length, 1, 'reported once, not on every check');

    client.release();
    assert.equal(logs.infos().length, 1);
    assert.match(logs.infos()[0]!, /previously reported checkout returned after \d+\.\d s: pool "leaky" taken at .*sites\.ts:\d+:\d+/);
    assert.equal(await t.value('pg_pool.checkout.leaked', byPool('leaky')), 0);
    assert.equal(await t.value('pg_pool.checkout.leak_returns', byPool('leaky')), 1);
    assert.equal(await t.value('pg_pool.checkout.oldest_age', byPool('leaky')), 0);
    await p.end();
  });

  it('does not report checkouts released in time, nor pool.query', async () => {
    const p = pool('tidy');
    const c = await p.connect();
    c.release();
    await p.query('SELECT 1');
    await new Promise((r) => setTimeout(r, THRESHOLD_MS + 100));
    assert.deepEqual(logs.warnings(), []);
    assert.equal(await t.value('pg_pool.checkout.leak_detections', byPool('tidy')), undefined);
    assert.equal(await t.value('pg_pool.checkout.leaked', byPool('tidy')), 0);
    await p.end();
  });

  it('never reports a client marked long-lived, and leaves it out of the oldest age', async () => {
    const p = pool('listener');
    const listen = await takeForListen(p);
    assert.equal(markLongLived(listen), true);
    await new Promise((r) => setTimeout(r, THRESHOLD_MS + 100));
    assert.deepEqual(logs.warnings(), []);
    assert.equal(await t.value('pg_pool.checkout.leaked', byPool('listener')), 0);
    assert.equal(await t.value('pg_pool.checkout.oldest_age', byPool('listener')), 0);
    listen.release();
    assert.equal(markLongLived(listen), false, 'the mark ends with the checkout');
    await p.end();
  });

  it('puts the leak on the span active at checkout, or on a child span once that span has ended', async () => {
    const p = pool('traced');
    const open = await t.tracer.startActiveSpan('request-still-open', (span) => takeAndForget(p).then((c) => ({ c, span })));
    const ended = await t.tracer.startActiveSpan('request-answered', async (span) => {
      const c = await takeAndForget(p);
      span.end();
      return { c, span };
    });
    await eventually(() => logs.warnings().length === 2, 3000, 'two leak warnings');
    for (const w of logs.warnings()) assert.match(w, / trace [0-9a-f]{32}\./);
    open.span.end();
    const spans = t.spans.getFinishedSpans();
    const openSpan = spans.find((s) => s.name === 'request-still-open')!;
    const event = openSpan.events.find((e) => e.name === LEAK_EVENT);
    assert.ok(event, 'event on the open span');
    assert.equal(event.attributes?.['db.client.connection.pool.name'], 'traced');
    assert.match(String(event.attributes?.['code.stacktrace']), /sites\.ts:\d+/);
    const child = spans.find((s) => s.name === LEAK_SPAN)!;
    assert.ok(child, 'child span for the ended request');
    assert.equal(child.spanContext().traceId, ended.span.spanContext().traceId);
    assert.equal(child.parentSpanContext?.spanId, ended.span.spanContext().spanId);
    assert.ok(child.events.some((e) => e.name === LEAK_EVENT));
    assert.notEqual(child.status.code, SpanStatusCode.ERROR);
    open.c.release();
    ended.c.release();
    await p.end();
  });

  it('still reports a leak of a pool whose end() is waiting for it', async () => {
    const p = pool('ending');
    const client = await takeAndForget(p);
    const ended = p.end(); // cannot finish while the client is out
    await eventually(() => logs.warnings().some((w) => w.includes('pool "ending"')), 3000, 'leak warning');
    assert.equal(await t.value('pg_pool.checkout.leaked', byPool('ending')), 1);
    client.release();
    await ended;
    assert.equal(await t.value('pg_pool.checkout.leaked', byPool('ending')), 0);
    assert.match(logs.infos().join('\n'), /returned after .* pool "ending"/);
  });

  it('counts every leaked checkout of a pool in the gauge, and drops one when it comes back', async () => {
    const p = pool('three');
    const clients = [await takeAndForget(p), await takeAndForget(p), await takeAndForget(p)];
    await eventually(async () => (await t.value('pg_pool.checkout.leaked', byPool('three'))) === 3, 3000, 'three leaked');
    clients[1]!.release();
    assert.equal(await t.value('pg_pool.checkout.leaked', byPool('three')), 2);
    assert.equal(await t.value('pg_pool.checkout.leak_detections', byPool('three')), 3);
    clients[0]!.release();
    clients[2]!.release();
    assert.equal(await t.value('pg_pool.checkout.leaked', byPool('three')), 0);
    await p.end();
  });

  it('with stack capture off, still reports the leak (pool and age) but takes no stack', async () => {
    const config = t.instrumentation.getConfig();
    t.instrumentation.setConfig({ ...config, captureStacks: false });
    void t.instrumentation.settings; // re-resolved: it installs the stderr logger again
    const off = captureLog();
    try {
      const p = pool('nostacks');
      const client = await takeAndForget(p);
      await eventually(() => off.warnings().length > 0, 3000, 'leak warning');
      const [warning] = off.warnings();
      assert.match(warning!, /possible connection leak: pool "nostacks" checkout held for \d+\.\d s/);
      assert.ok(!warning!.includes('sites.ts') && !warning!.includes(__filename), `no frames: ${warning}`);
      assert.match(warning!, /PG_POOL_OTEL_CAPTURE_STACKS/, 'says why there is no stack');
      const [outstanding] = checkoutsOutstanding().filter((c) => c.pool === 'nostacks');
      assert.equal(outstanding?.stackCaptured, false);
      assert.deepEqual(outstanding?.frames, []);
      client.release();
      await p.end();
    } finally {
      t.instrumentation.setConfig(config);
      void t.instrumentation.settings;
      captureLog();
    }
  });
});
