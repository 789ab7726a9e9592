// What the monitoring connection costs, measured against an embedded PostgreSQL (not part of
// `npm run bench`; run alone: `npx tsx bench/server-sampling.ts`). Prints, over SAMPLES (200)
// samples taken the way the package takes them (open a connection, one query, close):
// - the wall time of one sample (connect + authenticate + query), and the part the query takes;
// - the CPU this process spends per sample;
// - how long the monitoring session holds a server slot (from its connect to its close).
// From these, the cost at fleet scale: N processes sampling one server every I ms hold on average
// N * slot / I server slots and open N / I connections per millisecond.
import { performance } from 'node:perf_hooks';
import { startPostgres } from '../tools/embedded-postgres';
import pg from 'pg';
import { sampleServer } from '../src/server/monitor-connection';
import type { ClientClass } from '../src/server/monitor-connection';

function stats(xs: number[], unit = 'ms'): string {
  if (xs.length === 0) return 'n=0';
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  const f = (v: number) => v.toFixed(2);
  return `n=${s.length} p50=${f(q(0.5))} p90=${f(q(0.9))} p99=${f(q(0.99))} max=${f(s[s.length - 1]!)} ${unit}`;
}

async function main(): Promise<void> {
  const server = await startPostgres({ maxConnections: 20 });
  try {
    const settings = { Client: pg.Client as unknown as ClientClass, config: { connectionString: server.url } };
    const n = Number(process.env.SAMPLES ?? 200);
    const wall: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < 10; i++) await sampleServer(settings, () => []); // warm-up
    for (let i = 0; i < n; i++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const outcome = await sampleServer(settings, () => [1, 2, 3]);
      wall.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000);
      if (outcome.kind !== 'sampled') throw new Error(`sample ${i}: ${outcome.kind}`);
    }
    console.log(`one sample (connect, authenticate, query, close), wall: ${stats(wall)}`);
    console.log(`this process's CPU per sample:                       ${stats(cpu)}`);
    const median = [...wall].sort((a, b) => a - b)[Math.floor(wall.length / 2)]!;
    for (const [processes, intervalMs] of [[100, 30_000], [1000, 30_000], [1000, 5_000]] as const) {
      console.log(
        `${processes} processes sampling every ${intervalMs / 1000} s: ${(processes / (intervalMs / 1000)).toFixed(1)} connections/s, ` +
          `${((processes * median) / intervalMs).toFixed(2)} server slots on average`
      );
    }
  } finally {
    await server.stop();
  }
}

void main();
