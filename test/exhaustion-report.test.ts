// Pool exhaustion explained: a checkout that times out or waits past PG_POOL_OTEL_SLOW_WAIT_MS
// gives one WARN block naming who holds the pool, grouped by acquisition site; the same grouping
// on the waiting request's span and in the holders gauge; rate-limited per pool; silent for a
// pool that is busy but never makes anyone wait that long. pg-pool-otel/testing prints the same
// view on demand, under the preload too.
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Attributes } from '@opentelemetry/api';
import type { PoolClient } from 'pg';
import { instrument, eventually } from './support/telemetry';
import { usePostgres } from './support/server';
import { startApp } from './support/child';
import { setPoolName } from '../src/index';
import { captureLog, siteOf } from './fixtures/leaks/capture';
import { takeAndForget, takeElsewhere } from './fixtures/leaks/sites';
import { EXHAUSTION_EVENT } from '../src/leaks/exhaustion-report';
import { freshReportBudget } from './support/exhaustion';
import { ReportLimiter } from '../src/leaks/report-limiter';
import { describeHolders, poolHolders } from '../src/testing';

const SLOW_WAIT_MS = 600;
const t = instrument({ slowWaitMs: SLOW_WAIT_MS, leakThresholdMs: 60_000, configAdvice: false });
void t.instrumentation.settings; // settings install the stderr logger: replace it afterwards
const logs = captureLog();
const server = usePostgres();
after(() => t.shutdown());

afterEach(() => {
  logs.clear();
  t.spans.reset();
  freshReportBudget(t);
});

const SITES = join(__dirname, 'fixtures', 'leaks', 'sites.ts');
const byPool = (name: string) => ({ 'db.client.connection.pool.name': name });
const reports = () => logs.warnings().filter((w) => / exhausted: /.test(w));

function pool(name: string, options: { max: number; connectionTimeoutMillis?: number }) {
  const p = new t.pg.Pool({ connectionString: server.current.url, ...options });
  setPoolName(p, name);
  return p;
}

/** The holders gauge of a pool in one collection, as {site: connections}. */
async function gaugeBySite(name: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const p of await t.points('pg_pool.checkout.holders')) {
    if (p.attributes['db.client.connection.pool.name'] === name) out[String(p.attributes.site)] = p.value as number;
  }
  return out;
}

/** The grouping an exhaustion event carries, as {site: connections}. */
function eventBySite(attributes: Attributes | undefined): Record<string, number> {
  const sites = attributes?.['pg_pool.holders.site'] as string[];
  const counts = attributes?.['pg_pool.holders.count'] as number[];
  return Object.fromEntries(sites.map((s, i) => [s, counts[i]]));
}

/** "fn (file:line:col)" as the report and the gauge name a site: relative to the working directory. */
function shortSite(fn: string, name: string): RegExp {
  const file = join('test', 'fixtures', 'leaks', 'sites.ts');
  const line = siteOf(SITES, name).split(':').at(-2);
  return new RegExp(`^${fn} \\(${file.replace(/\./g, '\\.')}:${line}:\\d+\\)$`);
}

describe('exhaustion report', () => {
  it('a timeout on a pool held 3 + 1: one report naming both sites with 3 and 1, the same on the span and in the gauge', async () => {
    const p = pool('held-3-1', { max: 4, connectionTimeoutMillis: 200 });
    const held: PoolClient[] = [await takeAndForget(p), await takeAndForget(p), await takeAndForget(p), await takeElsewhere(p)];
    const err = await t.tracer.startActiveSpan('request', async (span) => {
      try {
        return await p.connect().then(() => undefined, (e: Error) => e);
      } finally {
        span.end();
      }
    });
    assert.match(String(err), /timeout exceeded when trying to connect/);

    assert.equal(reports().length, 1, logs.lines.join('\n'));
    const report = reports()[0]!;
    assert.match(report, /^WARN pool "held-3-1" exhausted: a checkout timed out after waiting 0\.\d s, trace [0-9a-f]{32}; 4 of 4 connections checked out, 0 requests queued\./);
    const lines = report.split('\n');
    const head3 = lines.findIndex((l) => /^ {2}3 held at takeAndForget \(.*\), the oldest for \d+\.\d s$/.test(l));
    const head1 = lines.findIndex((l) => /^ {2}1 held at takeElsewhere \(.*\), the oldest for \d+\.\d s$/.test(l));
    assert.ok(head3 > 0 && head1 > head3, `largest group first:\n${report}`);
    assert.ok(lines[head3 + 1]!.includes(siteOf(SITES, 'takeAndForget')), 'the frames of the site follow, full path');
    assert.ok(lines[head1 + 1]!.includes(siteOf(SITES, 'takeElsewhere')));
    assert.ok(!/node_modules\/pg(-pool)?\//.test(report), 'pg and pg-pool frames removed');

    const span = t.spans.getFinishedSpans().find((s) => s.name === 'request')!;
    const event = span.events.find((e) => e.name === EXHAUSTION_EVENT);
    assert.ok(event, 'event on the span of the request that timed out');
    assert.equal(event.attributes?.['pg_pool.exhaustion.trigger'], 'timeout');
    assert.equal(event.attributes?.['db.client.connection.pool.name'], 'held-3-1');
    assert.ok((event.attributes?.['pg_pool.checkout.waited'] as number) >= 0.2);
    const fromEvent = eventBySite(event.attributes);
    assert.deepEqual(Object.values(fromEvent), [3, 1]);
    const [siteA, siteB] = Object.keys(fromEvent);
    assert.match(siteA!, shortSite('takeAndForget', 'takeAndForget'));
    assert.match(siteB!, shortSite('takeElsewhere', 'takeElsewhere'));
    assert.deepEqual(await gaugeBySite('held-3-1'), fromEvent, 'the gauge groups exactly as the event');
    assert.equal(await t.value('pg_pool.exhaustion.reports', { ...byPool('held-3-1'), trigger: 'timeout' }), 1);

    held[0]!.release();
    held[3]!.release();
    assert.deepEqual(await gaugeBySite('held-3-1'), { [siteA!]: 2, [siteB!]: 0 }, 'a site that let go reads 0');
    held.slice(1, 3).forEach((c) => c.release());
    await p.end();
  });

  it('a slow-query storm through pool.query is named by its SQL, while the request still waits', async () => {
    const p = pool('storm', { max: 3 }); // no connectionTimeoutMillis: a queued request waits forever
    const storm = [1, 2, 3].map((i) => p.query(`SELECT pg_sleep(1.5), ${i} AS n`));
    await eventually(() => p.totalCount === 3 && p.idleCount === 0, 3000, 'three queries running');
    let answered = false;
    const waiting = t.tracer.startActiveSpan('queued request', (span) =>
      p.query('SELECT 1').finally(() => {
        answered = true;
        span.end();
      })
    );
    await eventually(() => reports().length > 0, 3000, 'a report while the request waits');
    assert.equal(answered, false, 'reported while the request still hangs');
    const report = reports()[0]!;
    assert.match(report, /^WARN pool "storm" exhausted: a checkout has waited 0\.\d s and is still queued \(PG_POOL_OTEL_SLOW_WAIT_MS=600\)/);
    assert.match(report, /3 of 3 connections checked out, 1 request queued\./);
    assert.match(report, /\n {2}3 held at pool\.query: SELECT pg_sleep\(\?\), \? AS n, the oldest for \d+\.\d s/);
    assert.deepEqual(await gaugeBySite('storm'), { 'pool.query: SELECT pg_sleep(?), ? AS n': 3 });
    await Promise.all([...storm, waiting]);
    const event = t.spans.getFinishedSpans().find((s) => s.name === 'queued request')?.events.find((e) => e.name === EXHAUSTION_EVENT);
    assert.equal(event?.attributes?.['pg_pool.exhaustion.trigger'], 'slow_wait');
    assert.deepEqual(eventBySite(event?.attributes), { 'pool.query: SELECT pg_sleep(?), ? AS n': 3 });
    assert.equal(reports().length, 1, 'the answered request is not reported again');
    await p.end();
  });

  it('fifty simultaneous timeouts give one report, and each request its span event', async () => {
    const p = pool('fifty', { max: 2, connectionTimeoutMillis: 300 });
    const held = [await takeAndForget(p), await takeElsewhere(p)];
    const failures = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        t.tracer.startActiveSpan(`request ${i}`, (span) =>
          p.connect().then(
            () => 'connected',
            (e: Error) => e.message
          ).finally(() => span.end())
        )
      )
    );
    assert.deepEqual(new Set(failures), new Set(['timeout exceeded when trying to connect']));
    assert.equal(await t.value('db.client.connection.timeouts', byPool('fifty')), 50);
    assert.equal(reports().length, 1, reports().join('\n'));
    assert.equal(await t.value('pg_pool.exhaustion.reports', { ...byPool('fifty'), trigger: 'timeout' }), 1);
    const withEvent = t.spans.getFinishedSpans().filter((s) => s.events.some((e) => e.name === EXHAUSTION_EVENT));
    assert.equal(withEvent.length, 50);
    held.forEach((c) => c.release());
    await p.end();
  });

  it('says nothing while waits stay under the setting, and reports the first wait past it', async () => {
    const p = pool('busy', { max: 2 });
    // Six workers on two connections: every round queues, no wait comes near the setting.
    const worker = async () => {
      for (let i = 0; i < 5; i++) await p.query('SELECT pg_sleep(0.02)');
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    const waits = await t.value('pg_pool.connection.waits', byPool('busy'));
    assert.ok(waits! >= 10, `the pool made requests wait (${waits} waits)`);
    const longest = (await t.histogram('db.client.connection.wait_time', byPool('busy')))!.max!;
    assert.ok(longest < SLOW_WAIT_MS / 1000 / 2, `waits stayed well under the setting (longest ${longest} s)`);
    assert.deepEqual(reports(), [], 'busy, but nobody waited past the setting: no report');
    assert.equal(await t.value('pg_pool.exhaustion.reports', { ...byPool('busy'), trigger: 'slow_wait' }), 0, 'the counter exists from the first wait, at 0');

    // The same pool, the same harness: one request now waits past the setting.
    const slow = [p.query('SELECT pg_sleep(1.2)'), p.query('SELECT pg_sleep(1.2)')];
    await eventually(() => p.idleCount === 0 && p.totalCount === 2, 3000, 'both connections busy');
    const queued = p.query('SELECT 2');
    await eventually(() => reports().length > 0, 3000, 'a report once the wait passes the setting');
    assert.match(reports()[0]!, /pool "busy" exhausted: a checkout has waited 0\.\d s and is still queued/);
    assert.match(reports()[0]!, /2 held at pool\.query: SELECT pg_sleep\(\?\)/);
    await Promise.all([...slow, queued]);
    assert.equal(await t.value('pg_pool.exhaustion.reports', { ...byPool('busy'), trigger: 'slow_wait' }), 1);
    await p.end();
  });

  it('pg-pool-otel/testing describes the same holders on demand', async () => {
    const p = pool('on-demand', { max: 3 });
    const held = [await takeAndForget(p), await takeAndForget(p), await takeElsewhere(p)];
    const mine = poolHolders().find((h) => h.pool === 'on-demand')!;
    assert.equal(mine.held, 3);
    assert.equal(mine.max, 3);
    assert.deepEqual(
      mine.groups.map((g) => g.count),
      [2, 1]
    );
    assert.match(mine.groups[0]!.site, shortSite('takeAndForget', 'takeAndForget'));
    assert.ok(mine.groups[0]!.frames[0]!.includes(siteOf(SITES, 'takeAndForget')));
    const text = describeHolders();
    assert.match(text, /pool "on-demand": 3 of 3 connections checked out, 0 requests queued\n {2}2 held at takeAndForget /);
    held.forEach((c) => c.release());
    assert.equal(poolHolders().find((h) => h.pool === 'on-demand'), undefined, 'nothing held, nothing listed');
    await p.end();
  });
});

describe('report limits', () => {
  it('one report per pool per interval, and a burst then a steady trickle across pools', () => {
    const l = new ReportLimiter<object>(60_000, 3, 10_000);
    const [a, b, c, d, e] = [{}, {}, {}, {}, {}];
    assert.equal(l.allow(a, 0), true);
    assert.equal(l.allow(a, 59_999), false, 'same pool within the interval');
    assert.equal(l.allow(b, 100), true);
    assert.equal(l.allow(c, 200), true);
    assert.equal(l.allow(d, 300), false, 'the burst is spent');
    assert.equal(l.allow(d, 10_300), true, 'one more after a refill period');
    assert.equal(l.allow(b, 60_100), true, 'b is due again, the bucket full again');
    assert.equal(l.allow(c, 60_200), true);
    assert.equal(l.allow(e, 60_300), true);
    assert.equal(l.allow(a, 60_400), false, 'a is due, but the burst is spent again');
    assert.equal(l.allow(a, 70_400), true);
  });
});

describe('under the preload', { timeout: 60_000 }, () => {
  it('printPoolHolders() shows who holds a pool a test hangs on, and the report comes while it hangs', async () => {
    const app = startApp(['--require', './dist/register.js', 'test/fixtures/leaks/hang.js'], {
      DATABASE_URL: server.current.url,
      OTEL_METRICS_EXPORTER: 'none',
      PG_POOL_OTEL_SLOW_WAIT_MS: '300',
      PG_POOL_OTEL_CONFIG_ADVICE: 'false',
    });
    try {
      await app.waitFor('PRINTED', 15_000);
      const err = app.stderr();
      const printed = err.slice(err.indexOf('pg-pool-otel holders:'));
      assert.match(printed, /pool "hang": 2 of 2 connections checked out, 1 request queued\n {2}2 held at holdTwo \(test\/fixtures\/leaks\/hang\.js:\d+:\d+\)/, err);
      assert.match(err, /WARN pool "hang" exhausted: a checkout has waited 0\.\d s and is still queued/);
      assert.equal((await app.exited).code, 0, err);
    } finally {
      app.kill();
    }
  });
});
