// ORMs and query builders that run on pg.Pool keep working under the instrumentation and get the
// pool metrics and leak reports of pg-pool: Kysely, Drizzle, TypeORM and pg-promise (which brings
// its own copy of pg). Each shows its pool's gauges and a leak named at this file's own line.
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument, eventually } from './support/telemetry';
import { usePostgres } from './support/server';
import { setPoolName } from '../src/index';
import { captureLog, siteOf } from './fixtures/leaks/capture';
import { byPool, poolReadings } from './support/pool-readings';

const t = instrument({ leakThresholdMs: 300, leakCheckIntervalMs: 20, configAdvice: false });
void t.instrumentation.settings;
const logs = captureLog();
const server = usePostgres();
after(() => t.shutdown());
afterEach(() => logs.clear());

/* eslint-disable @typescript-eslint/no-require-imports -- loaded after the instrumentation, so that pg is patched */
const { Kysely, PostgresDialect, sql } = require('kysely') as typeof import('kysely');
const { drizzle } = require('drizzle-orm/node-postgres') as typeof import('drizzle-orm/node-postgres');
const { sql: dsql } = require('drizzle-orm') as typeof import('drizzle-orm');
const { DataSource } = require('typeorm') as typeof import('typeorm');
const pgPromise = require('pg-promise') as typeof import('pg-promise');
/* eslint-enable @typescript-eslint/no-require-imports */

const readings = poolReadings(t);
async function gauges(name: string) {
  const { idle, used } = await readings.gauges(name);
  return { idle, used };
}

/** The single leak warning for `pool`, once it is logged. */
async function leakOf(pool: string): Promise<string> {
  await eventually(() => logs.warnings().some((w) => w.includes(`pool "${pool}"`)), 3000, `leak warning for ${pool}`);
  const found = logs.warnings().filter((w) => w.includes(`possible connection leak: pool "${pool}"`));
  assert.equal(found.length, 1, logs.lines.join('\n'));
  assert.ok(!/node_modules\//.test(found[0]!), `library frames removed: ${found[0]}`);
  return found[0]!;
}

describe('ORMs and builders on pg.Pool', () => {
  it('Kysely: pool gauges, and a controlled transaction never committed reported at its line', async () => {
    const pool = new t.pg.Pool({ connectionString: server.current.url, max: 3 });
    setPoolName(pool, 'kysely');
    const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool }) });
    await sql`SELECT 1`.execute(db);
    assert.deepEqual(await gauges('kysely'), { idle: 1, used: 0 });
    const trx = await db.startTransaction().execute(); // SITE:kysely
    await sql`SELECT 1`.execute(trx);
    assert.deepEqual(await gauges('kysely'), { idle: 0, used: 1 });
    assert.ok((await leakOf('kysely')).includes(siteOf(__filename, 'kysely')));
    await trx.commit().execute();
    assert.equal(await t.value('pg_pool.checkout.leak_returns', byPool('kysely')), 1);
    await db.destroy();
  });

  it('Drizzle: pool gauges, and a transaction held open reported at its line', async () => {
    const pool = new t.pg.Pool({ connectionString: server.current.url, max: 3 });
    setPoolName(pool, 'drizzle');
    const db = drizzle(pool);
    await db.execute(dsql`SELECT 1`);
    assert.deepEqual(await gauges('drizzle'), { idle: 1, used: 0 });
    let finish!: () => void;
    const held = new Promise<void>((resolve) => (finish = resolve));
    const work = async (tx: Parameters<Parameters<typeof db.transaction>[0]>[0]) => {
      await tx.execute(dsql`SELECT 1`);
      await held;
    };
    const trx = db.transaction(work); // SITE:drizzle
    assert.ok((await leakOf('drizzle')).includes(siteOf(__filename, 'drizzle')));
    assert.deepEqual(await gauges('drizzle'), { idle: 0, used: 1 });
    finish();
    await trx;
    assert.equal(await t.value('pg_pool.checkout.leak_returns', byPool('drizzle')), 1);
    await pool.end();
  });

  it('TypeORM: its pool named by applicationName, and a query runner never released reported at its line', async () => {
    const ds = new DataSource({ type: 'postgres', url: server.current.url, applicationName: 'typeorm-app', poolSize: 4 });
    await ds.initialize();
    await ds.query('SELECT 1');
    assert.equal(await t.value('db.client.connection.max', byPool('typeorm-app')), 4);
    assert.equal((await gauges('typeorm-app')).used, 0);
    const runner = ds.createQueryRunner();
    await runner.connect(); // SITE:typeorm
    await runner.query('SELECT 1');
    assert.equal((await gauges('typeorm-app')).used, 1);
    assert.ok((await leakOf('typeorm-app')).includes(siteOf(__filename, 'typeorm')));
    await runner.release();
    assert.equal(await t.value('pg_pool.checkout.leak_returns', byPool('typeorm-app')), 1);
    await ds.destroy();
  });

  it("pg-promise (its own copy of pg): pool gauges, and a connection never done() reported at its line", async () => {
    const pgp = pgPromise({ noWarnings: true });
    const db = pgp({ connectionString: server.current.url, max: 3 });
    setPoolName(db.$pool, 'pg-promise');
    await db.one('SELECT 1 AS x');
    assert.deepEqual(await gauges('pg-promise'), { idle: 1, used: 0 });
    const conn = await db.connect(); // SITE:pgPromise
    await conn.one('SELECT 1 AS x');
    assert.deepEqual(await gauges('pg-promise'), { idle: 0, used: 1 });
    assert.ok((await leakOf('pg-promise')).includes(siteOf(__filename, 'pgPromise')));
    conn.done();
    assert.equal(await t.value('pg_pool.checkout.leak_returns', byPool('pg-promise')), 1);
    await db.$pool.end();
    pgp.end();
  });
});
