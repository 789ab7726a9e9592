// Reports that name the application's line whatever library checks out on its behalf: a cold Knex
// or Sequelize pool that runs dry before its first connection is open still gets its exhaustion
// report; a Knex builder, knex.raw(), sequelize.query(), a model method and a sequelize.transaction()
// returned (not awaited) by a helper are each named at this file's line in the leak report, the
// exhaustion report and the pg_pool_checkout_holders gauge, with no library frame printed.
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { relative } from 'node:path';
import type { Knex } from 'knex';
import type { Sequelize as SequelizeType, ModelStatic, Model, Transaction } from 'sequelize';
import { instrument, eventually } from './support/telemetry';
import { usePostgres } from './support/server';
import { setPoolName } from '../src/index';
import { captureLog, siteOf } from './fixtures/leaks/capture';
import { byPool } from './support/pool-readings';
import { freshReportBudget } from './support/exhaustion';

const t = instrument({ leakThresholdMs: 300, leakCheckIntervalMs: 20, slowWaitMs: 0, configAdvice: false, poolBurstCount: 0 });
void t.instrumentation.settings; // settings install the stderr logger: replace it afterwards
const logs = captureLog();
const server = usePostgres();
after(() => t.shutdown());
afterEach(() => {
  logs.clear();
  freshReportBudget(t);
});

// Loaded after the instrumentation, so that they are patched.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const knex = require('knex') as typeof import('knex').knex;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Sequelize, DataTypes } = require('sequelize') as typeof import('sequelize');

const SELF = __filename;
const quiet = { warn() {}, error() {}, deprecate() {}, debug() {} };
const exhausted = (pool: string) => logs.warnings().filter((w) => w.includes(`pool "${pool}" exhausted`));
const leaks = (pool: string) => logs.warnings().filter((w) => w.includes('possible connection leak') && w.includes(`pool "${pool}"`));
const LIBRARY = /node_modules\/|\[library\]/;

function knexDb(name: string, max: number, timeoutMs: number): Knex {
  const k = knex({ client: 'pg', connection: server.current.url, pool: { min: 0, max }, acquireConnectionTimeout: timeoutMs, log: quiet });
  setPoolName(k, name);
  return k;
}
function orm(name: string, max: number, timeoutMs: number): SequelizeType {
  const s = new Sequelize(server.current.url, { logging: false, pool: { max, min: 0, acquire: timeoutMs } });
  setPoolName(s, name);
  return s;
}

/** The holders gauge of a pool now, as {site: connections}. */
async function holders(name: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const p of await t.points('pg_pool.checkout.holders')) {
    if (p.attributes['db.client.connection.pool.name'] === name && (p.value as number) > 0) out[String(p.attributes.site)] = p.value as number;
  }
  return out;
}

/**
 * `hold` keeps the only connection of pool `name` past the leak threshold; `another` asks for a
 * second one, which times out. The leak report, the exhaustion report and the holders gauge must
 * each name `site` (a SITE mark of this file).
 */
async function namedEverywhere(name: string, site: string, hold: Promise<unknown>, another: () => Promise<unknown>): Promise<void> {
  const at = siteOf(SELF, site);
  const short = relative(process.cwd(), at);
  await eventually(() => leaks(name).length > 0, 3000, 'leak report');
  const leak = leaks(name)[0]!;
  assert.ok(leak.includes(at), leak);
  assert.ok(!LIBRARY.test(leak), `no library frame printed: ${leak}`);
  const gauge = await holders(name);
  assert.deepEqual(Object.keys(gauge).length, 1, JSON.stringify(gauge));
  assert.ok(Object.keys(gauge)[0]!.includes(short), JSON.stringify(gauge));
  await assert.rejects(another());
  await eventually(() => exhausted(name).length > 0, 2000, 'exhaustion report');
  const report = exhausted(name)[0]!;
  assert.match(report, new RegExp(`1 held at .*${short.replace(/[.]/g, '\\.')}`), report);
  assert.ok(!LIBRARY.test(report), `no library frame printed: ${report}`);
  await hold;
  // PRINT_REPORTS=1: the reports as printed, for docs/finding-leaks.md.
  if (process.env.PRINT_REPORTS) console.log(`${leak}\n${report}`);
}

describe('cold pools running dry', () => {
  it('a Knex pool never used before reports its exhaustion at the first timeout', async () => {
    const k = knexDb('cold-knex', 2, 500);
    const runs = Array.from({ length: 4 }, () => k.raw('SELECT pg_sleep(1.2)').then(() => 'ok', (e: Error) => e.name));
    assert.deepEqual((await Promise.all(runs)).sort(), ['KnexTimeoutError', 'KnexTimeoutError', 'ok', 'ok']);
    assert.equal(exhausted('cold-knex').length, 1, logs.lines.join('\n'));
    assert.match(exhausted('cold-knex')[0]!, /a checkout timed out after waiting 0\.\d s; 2 of 2 connections checked out/);
    assert.equal(await t.value('pg_pool.exhaustion.reports', { ...byPool('cold-knex'), trigger: 'timeout' }), 1);
    assert.equal(await t.value('pg_pool.connection.waits', byPool('cold-knex')), 2);
    await k.destroy();
  });

  it('a Sequelize pool never used before reports its exhaustion at the first timeout', async () => {
    const s = orm('cold-sequelize', 2, 500);
    const runs = Array.from({ length: 4 }, () => s.query('SELECT pg_sleep(1.2)').then(() => 'ok', (e: Error) => e.name));
    assert.deepEqual((await Promise.all(runs)).sort(), ['SequelizeConnectionAcquireTimeoutError', 'SequelizeConnectionAcquireTimeoutError', 'ok', 'ok']);
    assert.equal(exhausted('cold-sequelize').length, 1, logs.lines.join('\n'));
    assert.equal(await t.value('pg_pool.exhaustion.reports', { ...byPool('cold-sequelize'), trigger: 'timeout' }), 1);
    await s.close();
  });
});

describe('the line that asked a query builder or ORM for the connection', () => {
  it('a Knex builder', async () => {
    const k = knexDb('site-builder', 1, 300);
    await k.raw('SELECT 1'); // warm: the site must not depend on a cold pool
    const hold = k.select(k.raw('pg_sleep(1.2)')); // SITE:knexBuilder
    await namedEverywhere('site-builder', 'knexBuilder', hold.then(() => undefined), () => k.raw('SELECT 1').then(() => undefined));
    await k.destroy();
  });

  it('knex.raw()', async () => {
    const k = knexDb('site-raw', 1, 300);
    const hold = k.raw('SELECT pg_sleep(1.2)'); // SITE:knexRaw
    await namedEverywhere('site-raw', 'knexRaw', hold.then(() => undefined), () => k('pg_class').count().then(() => undefined));
    await k.destroy();
  });

  it('sequelize.query()', async () => {
    const s = orm('site-query', 1, 300);
    const hold = s.query('SELECT pg_sleep(1.2)'); // SITE:seqQuery
    await namedEverywhere('site-query', 'seqQuery', hold, () => s.query('SELECT 1'));
    await s.close();
  });

  describe('with a model', () => {
    let s: SequelizeType;
    let Thing: ModelStatic<Model>;
    before(async () => {
      s = orm('site-model', 1, 300);
      Thing = s.define('orm_site_thing', { name: DataTypes.STRING }, { timestamps: false });
      await Thing.sync({ force: true });
      await Thing.create({ name: 'one row, so that the WHERE sleeps' });
    });
    after(() => s.close());

    it('a model method', async () => {
      const hold = Thing.findAll({ where: s.literal('pg_sleep(1.2) IS NOT NULL') }); // SITE:seqModel
      await namedEverywhere('site-model', 'seqModel', hold, () => s.query('SELECT 1'));
    });

    it('a sequelize.transaction() returned by a helper, not awaited there', async () => {
      const begin = (): Promise<Transaction> => s.transaction(); // SITE:seqReturnedTrx
      const trx = await begin();
      await namedEverywhere('site-model', 'seqReturnedTrx', new Promise((r) => setTimeout(r, 100)), () => Thing.count());
      await trx.rollback();
    });
  });
});
