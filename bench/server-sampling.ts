// What server sampling costs the app, measured against an embedded PostgreSQL (not part of
// `npm run bench`; run alone: `npx tsx bench/server-sampling.ts`). Prints:
// - steady single-connection traffic: connections opened, how many checkouts met the sampler
//   holding the connection, and what those checkouts waited;
// - a saturated pool (max 2, six loops of 5 ms queries): the age of the server sample while
//   saturated, and the checkout wait with sampling every 100 ms against sampling off, twice each,
//   interleaved (OFF_FIRST=1 starts with off), since a busy machine moves these more than sampling;
// - the monitoring query itself (pg_stat_activity), which bounds what any checkout waits for it.
// CHECKOUTS (3000) and SECONDS (6) size the first two parts.
import { performance } from 'node:perf_hooks';
import { startPostgres } from '../tools/embedded-postgres';
import { instrument } from '../test/support/telemetry';
import { lentIdleCount } from '../src/server/idle-lease';
import { internalQuery } from '../src/server/internal-query';
import { ACTIVITY_SQL } from '../src/server/activity-sample';
import type { PgClient } from '../src/pg-types';

const INTERVAL = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function stats(xs: number[]): string {
  if (xs.length === 0) return 'n=0';
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  const f = (v: number) => v.toFixed(2);
  return `n=${s.length} p50=${f(q(0.5))} p90=${f(q(0.9))} p99=${f(q(0.99))} max=${f(s[s.length - 1]!)} ms`;
}

async function main(): Promise<void> {
  // Before the server: embedded-postgres loads pg, which must be loaded after the hooks are in place.
  const t = instrument({ serverSampleIntervalMs: INTERVAL, leakThresholdMs: 0, configAdvice: false });
  const server = await startPostgres({ maxConnections: 20 });
  const srv = { 'server.address': '127.0.0.1', 'server.port': server.port };
  const sampledAt = async () => (await t.value('pg_pool.server.sample.timestamp', srv)) ?? 0;
  try {
    // 1. Steady single-connection traffic.
    {
      const pool = new t.pg.Pool({ connectionString: server.url, max: 10 });
      let connects = 0;
      pool.on('connect', () => connects++);
      const met: number[] = [];
      const others: number[] = [];
      const n = Number(process.env.CHECKOUTS ?? 3000);
      for (let i = 0; i < n; i++) {
        const lent = lentIdleCount(pool) > 0;
        const started = performance.now();
        const c = await pool.connect();
        (lent ? met : others).push(performance.now() - started);
        await c.query('SELECT 1');
        c.release();
        await sleep(1);
      }
      console.log(`steady: ${n} checkouts, ${connects} connection(s) opened, totalCount ${pool.totalCount}`);
      console.log(`  checkouts that met the sampler holding the connection: ${met.length} (${((100 * met.length) / n).toFixed(2)}%)`);
      console.log(`  their checkout wait:   ${stats(met)}`);
      console.log(`  all other checkouts:   ${stats(others)}`);
      await pool.end();
    }

    // 2. A saturated pool, sampling every 100 ms and then off.
    for (const interval of process.env.OFF_FIRST ? [0, INTERVAL, 0, INTERVAL] : [INTERVAL, 0, INTERVAL, 0]) {
      t.instrumentation.setConfig({ serverSampleIntervalMs: interval, leakThresholdMs: 0, configAdvice: false });
      const pool = new t.pg.Pool({ connectionString: server.url, max: 2 });
      let connects = 0;
      pool.on('connect', () => connects++);
      await Promise.all([pool.query('SELECT 1'), pool.query('SELECT 1')]);
      let stop = false;
      const waits: number[] = [];
      const loops = Array.from({ length: 6 }, async () => {
        while (!stop) {
          const started = performance.now();
          const c = await pool.connect();
          waits.push(performance.now() - started);
          await c.query('SELECT pg_sleep(0.005)');
          c.release();
        }
      });
      const ages: number[] = [];
      const until = Date.now() + Number(process.env.SECONDS ?? 6) * 1000;
      await sleep(500);
      while (Date.now() < until) {
        await sleep(25);
        const saturated = pool.waitingCount > 0;
        const now = Date.now();
        const at = (await sampledAt()) * 1000;
        if (saturated && interval > 0) ages.push(now - at);
      }
      stop = true;
      await Promise.all(loops);
      console.log(`saturated, sampling ${interval ? `every ${interval} ms` : 'off'}: ${connects} connections opened, ${waits.length} checkouts`);
      if (interval > 0) console.log(`  server sample age while saturated: ${stats(ages)}`);
      console.log(`  checkout wait: ${stats(waits)}`);
      await pool.end();
    }

    // 3. The monitoring query on its own.
    {
      const pool = new t.pg.Pool({ connectionString: server.url, max: 1 });
      const c = (await pool.connect()) as unknown as PgClient;
      const times: number[] = [];
      for (let i = 0; i < 500; i++) {
        const started = performance.now();
        await internalQuery(c, ACTIVITY_SQL, [[]], 5000);
        times.push(performance.now() - started);
      }
      console.log(`monitoring query (pg_stat_activity): ${stats(times)}`);
      (c as unknown as { release(): void }).release();
      await pool.end();
    }
  } finally {
    await t.shutdown();
    await server.stop();
  }
}

void main();
