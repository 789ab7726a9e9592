// The service dashboard: one service (scrape job), its instances and pools. Rows follow a
// checkout's life: the pool's capacity (and who holds it), waiting for a connection, holding it,
// the connections' own lifecycle, then the queries run on them.
import type { GeneratorConfig } from '../config';
import { sel } from '../promql';
import { dashboard, heatmap, queryVariable, timeseries, type Dashboard, type Query } from './model';
import { PROM, bucket, count } from '../metric-names';

const BY = 'job, instance, db_client_connection_pool_name';
const POOL_LEGEND = '{{instance}} {{db_client_connection_pool_name}}';

export function serviceDashboard(c: GeneratorConfig): Dashboard {
  const proc = ['job=~"$job"', 'instance=~"$instance"', c.selector];
  const f = [...proc, 'db_client_connection_pool_name=~"$pool"'];
  const m = (metric: string, ...extra: string[]) => sel(metric, ...f, ...extra);
  const rate = (metric: string, ...extra: string[]) => `rate(${m(metric, ...extra)}[$__rate_interval])`;
  const quantiles = (metric: string, qs: number[], by = BY, legend = POOL_LEGEND): Query[] =>
    qs.map((q) => ({
      expr: `histogram_quantile(${q}, sum by (${by}, le) (${rate(metric)}))`,
      legend: `p${q * 100} ${legend}`,
    }));
  const perPool = (agg: string, expr: string, legend = POOL_LEGEND): Query => ({ expr: `${agg} by (${BY}) (${expr})`, legend });

  return dashboard(
    `${c.dashboardUidPrefix}-service`,
    'pg-pool-otel / Service',
    'node-postgres pools of one service: capacity, waits, holds, leaks, connection churn and queries (pg-pool-otel).',
    [
      queryVariable('job', 'Service (job)', `label_values(${sel(PROM.connectionMax, c.selector)}, job)`),
      queryVariable('instance', 'Instance', `label_values(${sel(PROM.connectionMax, 'job=~"$job"', c.selector)}, instance)`),
      queryVariable('pool', 'Pool', `label_values(${sel(PROM.connectionMax, ...proc)}, db_client_connection_pool_name)`),
    ],
    [
      {
        title: 'Pool capacity',
        panels: [
          timeseries('Connections by state vs max', 'Open connections of each pool, used (checked out) and idle, against the pool maximum (dashed). Used at max means new checkouts queue.', 'short', [
            { expr: `sum by (${BY}, db_client_connection_state) (${m(PROM.connectionCount)})`, legend: `${POOL_LEGEND} {{db_client_connection_state}}` },
            perPool('max', m(PROM.connectionMax), `max ${POOL_LEGEND}`),
          ], { w: 8 }),
          timeseries('Who holds the pool', 'Checked-out connections by acquisition site (pg_pool.checkout.holders): the code line that called pool.connect(), or the SQL of pool.query(), against the pool maximum (dashed). When the pool is full, the largest band is what holds it; the exhaustion report in the service log names the same sites with their stacks.', 'short', [
            { expr: `sum by (${BY}, site) (${m(PROM.checkoutHolders)}) > 0`, legend: `${POOL_LEGEND} {{site}}` },
            perPool('max', m(PROM.connectionMax), `max ${POOL_LEGEND}`),
          ], { stack: true, w: 8 }),
          timeseries('Waiting requests', 'Checkouts queued because every connection is in use. Persistently above zero: the pool is too small for the load or connections are held too long.', 'short', [
            perPool('sum', m(PROM.pendingRequests)),
          ], { w: 8 }),
        ],
      },
      {
        title: 'Waiting for a connection',
        panels: [
          timeseries('Wait time percentiles', 'Time from pool.connect()/pool.query() to getting a connection (db.client.connection.wait_time): p50, p95, p99 per pool.', 's', quantiles(bucket('waitTime'), [0.5, 0.95, 0.99])),
          heatmap('Wait time heatmap', 'Distribution of checkout wait times over all selected pools: a band moving up means queueing.', 's', {
            expr: `sum by (le) (increase(${m(bucket('waitTime'))}[$__rate_interval]))`,
            legend: '{{le}}',
          }),
          timeseries('Checkout timeouts', 'Checkouts per second that gave up after connectionTimeoutMillis (db.client.connection.timeouts). Each one is a failed request.', 'cps', [
            perPool('sum', rate(PROM.timeouts)),
          ]),
          timeseries('Exhaustion reports', 'Exhaustion reports written to the service log (pg_pool.exhaustion.reports), by trigger: a queued checkout timed out, or waited longer than PG_POOL_OTEL_SLOW_WAIT_MS. Each names who held the pool at that moment, grouped by acquisition site; at most one per pool per minute.', 'short', [
            { expr: `sum by (${BY}, trigger) (increase(${m(PROM.exhaustionReports)}[$__rate_interval]))`, legend: `${POOL_LEGEND} {{trigger}}` },
          ]),
        ],
      },
      {
        title: 'Holding connections',
        panels: [
          timeseries('Hold time percentiles', 'How long checked-out connections are held before release (db.client.connection.use_time): p50, p95, p99 per pool.', 's', quantiles(bucket('useTime'), [0.5, 0.95, 0.99])),
          timeseries('Leaked checkouts', 'Connections checked out for longer than the leak threshold and not yet released. The service log has the stack of each checkout.', 'short', [
            perPool('max', m(PROM.leaked)),
          ], { w: 6 }),
          timeseries('Oldest checkout age', 'Age of the longest-held checkout of each pool (0 when nothing is checked out).', 's', [
            perPool('max', m(PROM.oldestAge)),
          ], { w: 6 }),
          timeseries('Released inside a transaction', 'Clients released per second while a transaction was open or failed: the next user inherits the transaction.', 'cps', [
            { expr: `sum by (${BY}, transaction_status) (${rate(PROM.releasedInTransaction)})`, legend: `${POOL_LEGEND} {{transaction_status}}` },
          ], { w: 24 }),
        ],
      },
      {
        title: 'Connection lifecycle',
        panels: [
          timeseries('Connections closed by reason', 'Connections closed per second by reason (idle_timeout, max_uses, max_lifetime, released_with_error, broken, ...). Steady idle_timeout closes with as many opens is churn.', 'cps', [
            { expr: `sum by (${BY}, reason) (${rate(PROM.closed)})`, legend: `${POOL_LEGEND} {{reason}}` },
          ], { w: 8 }),
          timeseries('Connections opened', 'New connections opened per second by each pool.', 'cps', [perPool('sum', rate(count('createTime')))], { w: 8 }),
          timeseries('Connection create time percentiles', 'Time to open a new connection (TCP, TLS, authentication): p50 and p95 per pool.', 's', quantiles(bucket('createTime'), [0.5, 0.95]), { w: 8 }),
          timeseries('Connection errors by type', 'Failed connection attempts per second by error type: SQLSTATE (53300 too many connections, 57P03 starting up, 28P01 bad password) or a network error code.', 'cps', [
            { expr: `sum by (job, instance, error_type) (${rate(PROM.connectionErrors)})`, legend: '{{instance}} {{error_type}}' },
          ]),
          timeseries('Live pools per process', 'pg.Pool objects alive in each process. Growing: a pool is created per request or per tenant without bound.', 'short', [
            { expr: `max by (job, instance) (${sel(PROM.pools, ...proc)})`, legend: '{{instance}}' },
          ]),
        ],
      },
      {
        title: 'Queries',
        panels: [
          timeseries('Query rate by operation', 'Queries per second by operation (db.operation.name).', 'ops', [
            { expr: `sum by (db_operation_name) (${rate(count('operationDuration'))})`, legend: '{{db_operation_name}}' },
          ], { w: 8 }),
          timeseries('Query duration percentiles by operation', 'Query duration (db.client.operation.duration) p50 and p95 by operation.', 's', quantiles(bucket('operationDuration'), [0.5, 0.95], 'db_operation_name', '{{db_operation_name}}'), { w: 8 }),
          timeseries('Query errors by operation', 'Failed queries per second by operation and error type (SQLSTATE).', 'cps', [
            { expr: `sum by (db_operation_name, error_type) (${rate(count('operationDuration'), 'error_type!=""')})`, legend: '{{db_operation_name}} {{error_type}}' },
          ], { w: 8 }),
        ],
      },
    ]
  );
}
