// Small PromQL building blocks shared by the alert rules and the dashboards, so that both
// aggregate the same way (pool identity, server identity, the usable connection limit).
import { PROM } from './metric-names';

/** Labels that identify one pool in one process. */
export const POOL = 'job, instance, db_client_connection_pool_name, server_address, server_port';
/** Labels that identify one PostgreSQL server. */
export const SERVER = 'server_address, server_port';

/** `metric{matchers}`: joins matcher lists, skipping empty ones. */
export function sel(metric: string, ...matchers: string[]): string {
  const m = matchers.map((x) => x.trim()).filter((x) => x !== '');
  return m.length === 0 ? metric : `${metric}{${m.join(', ')}}`;
}

/** Connections the server has open (all states, all owners), as seen by the best-informed process.
 * Every instrumented process reports the whole server, hence max, not sum, across processes. */
export function serverUsed(...m: string[]): string {
  return `max by (${SERVER}) (sum by (job, instance, ${SERVER}) (${sel(PROM.serverConnectionCount, ...m)}))`;
}

/** What ordinary users may open: max_connections minus both reserved pools. `reserved_connections`
 * exists from PostgreSQL 16 on; where it is absent, the `or` substitutes 0. */
export function serverUsable(...m: string[]): string {
  const su = sel(PROM.serverSuperuserReserved, ...m);
  return (
    `max by (${SERVER}) (${sel(PROM.serverMaxConnections, ...m)} - ${su}` +
    ` - (${sel(PROM.serverReserved, ...m)} or ${su} * 0))`
  );
}

/** The maxima of pools that open their connections on the server itself: a pool behind a pooler
 * (its address has pg_pool_pooler_info) is a budget against the pooler, not against max_connections. */
export function directPoolMax(...m: string[]): string {
  return `(${sel(PROM.connectionMax, ...m)} unless on (${SERVER}) ${sel(PROM.poolerInfo, ...m)})`;
}

/** Prometheus duration ("1h30m") to seconds. */
export function seconds(duration: string): number {
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  let total = 0;
  for (const [, n, u] of duration.matchAll(/([0-9]+)(ms|s|m|h|d|w|y)/g)) total += Number(n) * (units[u as string] ?? 0);
  return total;
}

/** Events counted by `counter` within `window`, summed by `by`, above `threshold`. The exporter
 * creates a counter series at its first event, already at 1 or more, which `increase()` cannot
 * see; the second branch counts such a new series, but only for a target that was already scraped
 * a window ago (so that a freshly started Prometheus does not alert on old totals). */
export function eventsAbove(counter: string, window: string, by: string, threshold: number): string {
  return (
    `sum by (${by}) (increase(${counter}[${window}])) > ${threshold}\n` +
    `or\nsum by (${by}) ((${counter} unless ${counter} offset ${window}) and on (job, instance) (up offset ${window})) > ${threshold}`
  );
}
