// The server dashboard: one PostgreSQL server as seen by every instrumented process, so that the
// whole fleet's use of max_connections is in one place. Server-level gauges come from every
// process: they are aggregated with max, pool gauges with sum.
import type { GeneratorConfig } from '../config';
import { SERVER, directPoolMax, sel, serverUsable, serverUsed } from '../promql';
import { dashboard, queryVariable, stat, table, timeseries, type Dashboard, type Query } from './model';
import { PROM } from '../metric-names';

export function serverDashboard(c: GeneratorConfig): Dashboard {
  const f = ['server_address=~"$server"', 'server_port=~"$port"', c.selector];
  const m = (metric: string, ...extra: string[]) => sel(metric, ...f, ...extra);
  const usable = serverUsable(...f);
  const used = serverUsed(...f);
  const limit: Query = { expr: usable, legend: 'limit: usable {{server_address}}:{{server_port}}' };
  const t = c.thresholds;
  const green = { color: 'green', value: null };

  return dashboard(
    `${c.dashboardUidPrefix}-server`,
    'pg-pool-otel / PostgreSQL server',
    'One PostgreSQL server seen by all instrumented services: connections against max_connections - reserved, the fleet connection budget, who holds connections (pg-pool-otel).',
    [
      queryVariable('server', 'Server', `label_values(${sel(PROM.serverMaxConnections, c.selector)}, server_address)`),
      queryVariable('port', 'Port', `label_values(${sel(PROM.serverMaxConnections, 'server_address=~"$server"', c.selector)}, server_port)`),
    ],
    [
      {
        title: 'Server connections',
        panels: [
          timeseries('Server connections by state vs usable limit', 'Client backends open on the server by state (from pg_stat_activity), against max_connections - superuser_reserved_connections - reserved_connections (dashed) and max_connections. `unknown` are sessions of other roles whose state this role may not see (GRANT pg_read_all_stats to see them).', 'short', [
            { expr: `max by (${SERVER}, state) (sum by (job, instance, ${SERVER}, state) (${m(PROM.serverConnectionCount)}))`, legend: '{{server_address}}:{{server_port}} {{state}}' },
            limit,
            { expr: `max by (${SERVER}) (${m(PROM.serverMaxConnections)})`, legend: 'max_connections {{server_address}}:{{server_port}}' },
          ], { stack: true }),
          timeseries('Headroom', 'Connections still available to ordinary users: the usable limit minus open backends. At zero, new connections fail with 53300.', 'short', [
            { expr: `${usable} - ${used}`, legend: '{{server_address}}:{{server_port}}' },
          ], { w: 6 }),
          stat('Usage of usable limit', 'Open backends as a fraction of the usable limit; the colours are the alert thresholds.', 'percentunit', { expr: `${used} / ${usable}`, legend: '{{server_address}}:{{server_port}}' }, [
            green,
            { color: 'orange', value: t.serverWarningRatio },
            { color: 'red', value: t.serverCriticalRatio },
          ]),
        ],
      },
      {
        title: 'Fleet budget',
        panels: [
          timeseries('Pool maxima by service vs usable limit', 'Sum of the max of every instrumented pool connecting to this server directly, stacked by service (job), against the usable limit (dashed). Above the line, the fleet can ask for more connections than the server accepts. Pools behind a pooler are a budget against the pooler and are left out.', 'short', [
            { expr: `sum by (job) ${directPoolMax(...f)}`, legend: '{{job}}' },
            limit,
          ], { stack: true, w: 18 }),
          stat('Budget commitment', 'Sum of the maxima of pools connecting directly as a fraction of the usable limit; above 100% the fleet is overcommitted.', 'percentunit', { expr: `sum by (${SERVER}) ${directPoolMax(...f)} / ${usable}`, legend: '{{server_address}}:{{server_port}}' }, [
            green,
            { color: 'orange', value: 0.9 },
            { color: 'red', value: 1 },
          ]),
        ],
      },
      {
        title: 'Who holds connections',
        panels: [
          timeseries('Connections held by service', 'Pool connections open to this server by service (job) and state (used/idle).', 'short', [
            { expr: `sum by (job, db_client_connection_state) (${m(PROM.connectionCount)})`, legend: '{{job}} {{db_client_connection_state}}' },
          ], { stack: true, w: 8 }),
          table('Connections held by instance', 'Pool connections open to this server per instance, largest first.', 'short', { expr: `sort_desc(sum by (job, instance) (${m(PROM.connectionCount)}))`, legend: '' }, 8),
          timeseries('Instrumented vs other connections', 'Backends opened by instrumented processes against all the others (unpooled scripts, other services, admin sessions).', 'short', [
            { expr: `sum by (${SERVER}) (${m(PROM.serverConnectionCount, 'owner="this_process"')})`, legend: 'instrumented {{server_address}}:{{server_port}}' },
            { expr: `${used} - sum by (${SERVER}) (${m(PROM.serverConnectionCount, 'owner="this_process"')})`, legend: 'other {{server_address}}:{{server_port}}' },
          ], { stack: true, w: 8 }),
        ],
      },
      {
        title: 'Transactions, refusals and sampling',
        panels: [
          timeseries('Oldest idle-in-transaction age', 'Age of the oldest session idle inside an open transaction: it holds a connection and locks, and blocks vacuum.', 's', [
            { expr: `max by (${SERVER}) (${m(PROM.serverIdleInTransactionOldestAge)})`, legend: '{{server_address}}:{{server_port}}' },
          ], { w: 6 }),
          timeseries('Idle-in-transaction connections', 'Backends idle inside an open (or aborted) transaction.', 'short', [
            { expr: `max by (${SERVER}, state) (sum by (job, instance, ${SERVER}, state) (${m(PROM.serverConnectionCount, 'state=~"idle in transaction.*"')}))`, legend: '{{server_address}}:{{server_port}} {{state}}' },
          ], { w: 6 }),
          timeseries('Connection refusals (53300) by service', 'Connection attempts per second refused with SQLSTATE 53300 (too many connections), by service.', 'cps', [
            { expr: `sum by (job) (rate(${m(PROM.connectionErrors, 'error_type="53300"')}[$__rate_interval]))`, legend: '{{job}}' },
          ], { w: 6 }),
          stat('Server sample age', 'Seconds since any process last read max_connections and pg_stat_activity from this server; the server panels and alerts are stale when this grows.', 's', { expr: `time() - max by (${SERVER}) (${m(PROM.serverSampleTimestamp)})`, legend: '{{server_address}}:{{server_port}}' }, [
            green,
            { color: 'red', value: t.serverSampleStaleSeconds },
          ]),
        ],
      },
    ]
  );
}
