// Faults inside the package stay inside: the app's checkout or query proceeds exactly as without
// it, and the fault is logged once. Also: several copies of pg, pg.native untouched, bounded
// attribute values, and nothing secret on spans or metrics.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { instrument, eventually } from './support/telemetry';
import { ServerHeadroom } from '../src/server/server-headroom';
import { usePostgres } from './support/server';
import { setLogger, resetOnceState, type Logger } from '../src/diag';
import { setPoolName } from '../src/index';

const t = instrument({ leakThresholdMs: 50, leakCheckIntervalMs: 20, maxCollectionNames: 3, serverSampleIntervalMs: 100 });
const server = usePostgres();
after(() => t.shutdown());

function captureLog(): { lines: string[]; restore(): void } {
  const lines: string[] = [];
  const logger: Logger = {
    error: (m) => lines.push(`ERROR ${m}`),
    warn: (m) => lines.push(`WARN ${m}`),
    info: (m) => lines.push(`INFO ${m}`),
    debug: () => {},
  };
  setLogger(logger);
  resetOnceState();
  return { lines, restore: () => setLogger({ ...logger, error: () => {}, warn: () => {}, info: () => {} }) };
}

/** Replaces obj[key] with a function that throws, for the duration of `run`. */
async function breaking<T extends object>(obj: T, key: keyof T, run: () => Promise<void>) {
  const original = obj[key];
  (obj as Record<keyof T, unknown>)[key] = () => {
    throw new Error(`injected fault in ${String(key)}`);
  };
  try {
    await run();
  } finally {
    (obj as Record<keyof T, unknown>)[key] = original;
  }
}

describe('faults in the package stay inside', () => {
  it('checkout hook, query hook, metric callback, feature listeners and the leak timer', async () => {
    void t.instrumentation.settings; // resolved first, so its log level does not replace the capture
    const log = captureLog();
    const pool = new t.pg.Pool({ connectionString: server.current.url });
    setPoolName(pool, 'faults');
    const core = t.instrumentation.core;

    await breaking(core.pools, 'requestCheckout', async () => {
      assert.equal((await pool.query('SELECT 1 AS n')).rows[0].n, 1);
      const c = await pool.connect();
      c.release();
      assert.equal((await pool.query('SELECT 2 AS n')).rows[0].n, 2);
    });
    await breaking(core.queries as unknown as { start: unknown }, 'start', async () => {
      assert.equal((await pool.query('SELECT 3 AS n')).rows[0].n, 3);
    });
    await breaking(core.registry, 'liveStates', async () => {
      const metrics = await t.collect();
      assert.ok(metrics.some((m) => m.descriptor.name === 'db.client.operation.duration'), 'other metrics still export');
    });
    for (const feature of core.features) {
      for (const hook of ['checkedOut', 'released', 'clientConnected'] as const) {
        if (typeof feature[hook] !== 'function') continue;
        await breaking(feature, hook, async () => {
          const c = await pool.connect();
          assert.equal((await c.query('SELECT 4 AS n')).rows[0].n, 4);
          c.release();
        });
      }
    }
    // A leaked checkout while the leak report itself fails.
    const held = await pool.connect();
    await new Promise((r) => setTimeout(r, 200));
    held.release();

    const internal = log.lines.filter((l) => l.includes('internal error'));
    assert.ok(internal.length >= 3, log.lines.join('\n'));
    const places = internal.map((l) => /internal error in ([^(]+)/.exec(l)?.[1]);
    assert.equal(new Set(places).size, places.length, 'each place reported once');
    log.restore();
    await pool.end();
  });
});

describe('a fault in the server sampler stays inside', () => {
  it('queries go on, the fault is logged once, and sampling resumes once it is gone', async () => {
    void t.instrumentation.settings;
    const log = captureLog();
    const pool = new t.pg.Pool({ connectionString: server.current.url });
    setPoolName(pool, 'sampler-faults');
    const srv = { 'server.address': '127.0.0.1', 'server.port': server.current.port };
    const sampledAt = async () => (await t.value('pg_pool.server.sample.timestamp', srv)) ?? 0;
    await pool.query('SELECT 1');
    // Recording a sample throws on every attempt while broken.
    await breaking(ServerHeadroom.prototype as unknown as { record: unknown }, 'record', async () => {
      for (let i = 0; i < 10; i++) {
        assert.equal((await pool.query('SELECT $1::int AS n', [i])).rows[0].n, i);
        await new Promise((r) => setTimeout(r, 30));
      }
      assert.equal(pool.idleCount, pool.totalCount, 'no client lost by the failed sampler');
    });
    const lines = log.lines.filter((l) => l.includes('internal error in server sample'));
    assert.equal(lines.length, 1, log.lines.join('\n'));
    const since = Date.now() / 1000;
    await pool.query('SELECT 1');
    await eventually(async () => (await sampledAt()) > since, 3000, 'sampling resumes');
    log.restore();
    await pool.end();
  });
});

describe('several copies of pg', () => {
  it('a second copy of pg in a nested node_modules is instrumented too', async () => {
    // Inside the repository, so the copy resolves its own dependencies (pg-types, ...) as a nested
    // node_modules would.
    mkdirSync(join(__dirname, '..', '.tmp'), { recursive: true });
    const dir = mkdtempSync(join(__dirname, '..', '.tmp', 'pg-copy-'));
    try {
      const root = join(__dirname, '..', 'node_modules');
      for (const pkg of ['pg', 'pg-pool']) cpSync(join(root, pkg), join(dir, 'node_modules', pkg), { recursive: true });
      const copy = require(join(dir, 'node_modules', 'pg')) as typeof import('pg');
      assert.notEqual(copy.Pool, t.pg.Pool, 'a distinct copy');
      const a = new t.pg.Pool({ connectionString: server.current.url });
      const b = new copy.Pool({ connectionString: server.current.url });
      setPoolName(a, 'copy-a');
      setPoolName(b, 'copy-b');
      await a.query('SELECT 1');
      await b.query('SELECT 1');
      for (const name of ['copy-a', 'copy-b']) {
        const h = await t.histogram('db.client.connection.wait_time', { 'db.client.connection.pool.name': name });
        assert.equal(h?.count, 1, name);
      }
      await a.end();
      await b.end();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never loads pg.native', () => {
    const loaded = Object.keys(require.cache).filter((p) => p.includes(`${join('pg', 'lib', 'native')}`) || p.includes('pg-native'));
    assert.deepEqual(loaded, []);
  });
});

describe('bounded attributes and privacy', () => {
  it('caps distinct db.collection.name values with an other bucket', async () => {
    const pool = new t.pg.Pool({ connectionString: server.current.url });
    setPoolName(pool, 'cardinality');
    for (let i = 0; i < 6; i++) await pool.query(`CREATE TABLE IF NOT EXISTS card_${i} (id int)`);
    for (let i = 0; i < 6; i++) await pool.query(`SELECT * FROM card_${i}`);
    const names = new Set(
      (await t.points('db.client.operation.duration'))
        .filter((p) => p.attributes['db.client.connection.pool.name'] === 'cardinality')
        .map((p) => p.attributes['db.collection.name'])
    );
    assert.ok(names.has('other'), [...names].join(','));
    assert.ok(names.size <= 3 + 2, `bounded: ${[...names].join(',')}`);
    await pool.end();
  });

  it('no literal, parameter or query text reaches metrics; literals never reach spans', async () => {
    t.spans.reset();
    const pool = new t.pg.Pool({ connectionString: server.current.url });
    setPoolName(pool, 'privacy');
    await pool.query("SELECT 1 WHERE 'hunter2' <> $1 AND 'alice@example.com' <> $2", ['s3cr3t-param', 'bob@example.com']);
    await pool.query("SELECT $tag$dollar secret$tag$, E'esc\\'aped secret', 12345");
    const everything = JSON.stringify(await t.collect()) + JSON.stringify(t.spans.getFinishedSpans().map((s) => s.attributes));
    for (const secret of ['hunter2', 'alice@example.com', 's3cr3t-param', 'bob@example.com', 'dollar secret', 'aped secret', '12345']) {
      assert.ok(!everything.includes(secret), `${secret} leaked`);
    }
    await pool.end();
  });
});
