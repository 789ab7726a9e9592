// Reading one pool's series back by its name, for the tests of pools of any library.
import type { Harness } from './telemetry';

export const byPool = (name: string) => ({ 'db.client.connection.pool.name': name });

export function poolReadings(t: Harness) {
  return {
    /** Connections idle and used, and requests queued. */
    async gauges(name: string) {
      const p = byPool(name);
      return {
        idle: await t.value('db.client.connection.count', { ...p, 'db.client.connection.state': 'idle' }),
        used: await t.value('db.client.connection.count', { ...p, 'db.client.connection.state': 'used' }),
        pending: await t.value('db.client.connection.pending_requests', p),
      };
    },
    /** How many values a histogram of the pool holds. */
    count: async (metric: string, attrs: Record<string, string>) => (await t.histogram(metric, attrs))?.count,
    closed: (name: string, reason: string) => t.value('pg_pool.connection.closed', { ...byPool(name), reason }),
    /** Open bare clients, all servers together. */
    async bareOpen(): Promise<number> {
      let n = 0;
      for (const p of await t.points('pg_pool.client.connection.count')) n += p.value as number;
      return n;
    },
  };
}
