// The alert rules: one definition per alert, rendered into a Prometheus rule file. Pool alerts
// group by POOL (service = scrape job); server alerts by SERVER, taking max across processes
// because every process reports the same server.
import { stringify } from 'yaml';
import type { AlertName, GeneratorConfig } from './config';
import { POOL, SERVER, directPoolMax, eventsAbove, sel, serverUsable, serverUsed, seconds } from './promql';
import { firstSteps } from './runbooks';
import { PROM, bucket, count } from './metric-names';

export type Severity = 'critical' | 'warning' | 'info';

export interface AlertRule {
  alert: AlertName;
  expr: string;
  for?: string;
  labels: { severity: Severity };
  annotations: {
    summary: string;
    description: string;
    /** What to check and do first, from the runbook: a page is useful without following a link. */
    first_steps: string;
    /** Only when the config says where the runbooks are served. */
    runbook_url?: string;
    dashboard_url?: string;
  };
}

export interface RuleFile {
  groups: { name: string; rules: AlertRule[] }[];
}

interface AlertDef {
  alert: AlertName;
  severity: Severity;
  for: string;
  expr: string;
  summary: string;
  description: string;
  dashboard: 'service' | 'server';
}

const pct = (ratio: number) => `${Math.round(ratio * 1000) / 10}%`;
const POOL_ID = '{{ $labels.db_client_connection_pool_name }} ({{ $labels.job }}/{{ $labels.instance }})';
const SERVER_ID = '{{ $labels.server_address }}:{{ $labels.server_port }}';

function definitions(c: GeneratorConfig): AlertDef[] {
  const t = c.thresholds;
  const s = c.selector;
  const m = (metric: string, ...matchers: string[]) => sel(metric, ...matchers, s);
  const poolMax = `max by (${POOL}) (${m(PROM.connectionMax)} > 0)`;
  const used = serverUsed(s);
  const usable = `(${serverUsable(s)} > 0)`;
  const pool = (d: Omit<AlertDef, 'dashboard'>): AlertDef => ({ ...d, dashboard: 'service' });
  const server = (d: Omit<AlertDef, 'dashboard'>): AlertDef => ({ ...d, dashboard: 'server' });
  const nearLimit = (severity: Severity, ratio: number, forDuration: string): AlertDef =>
    server({
      alert: 'PgPoolServerConnectionsNearLimit',
      severity,
      for: forDuration,
      // A server that refused the monitoring connection for lack of slots (full = 1) is at 100%
      // whatever the last counts said: the larger of the two, told apart by a label so `or` keeps both.
      expr: `max by (${SERVER}) (\n${used}\n/\n${usable}\nor\nlabel_replace(max by (${SERVER}) (${m(PROM.serverFull)}), "signal", "full", "", "")\n)\n> ${ratio}`,
      summary: `PostgreSQL ${SERVER_ID} is using {{ $value | humanizePercentage }} of its usable connections.`,
      description:
        `Server ${SERVER_ID} has {{ $value | humanizePercentage }} of max_connections - reserved connections in use ` +
        `(threshold ${pct(ratio)}). New connections will soon be refused with 53300.`,
    });
  return [
    pool({
      alert: 'PgPoolRequestsQueued',
      severity: 'warning',
      for: '2m',
      expr: `avg_over_time((max by (${POOL}) (${m(PROM.pendingRequests)}) > bool 0)[${t.queuedWindow}:])\n>= ${t.queuedFraction}`,
      summary: `Requests are queuing for connections on pool ${POOL_ID}.`,
      description: `Pool ${POOL_ID} had requests waiting for a free connection {{ $value | humanizePercentage }} of the last ${t.queuedWindow}.`,
    }),
    pool({
      alert: 'PgPoolWaitTimeHigh',
      severity: 'warning',
      for: '5m',
      expr: `histogram_quantile(0.95, sum by (${POOL}, le) (rate(${m(bucket('waitTime'))}[5m])))\n> ${t.waitP95Seconds}`,
      summary: `Slow connection checkouts on pool ${POOL_ID}.`,
      description: `95% of checkouts from pool ${POOL_ID} waited up to {{ $value | humanizeDuration }} for a connection over the last 5m (threshold ${t.waitP95Seconds}s).`,
    }),
    pool({
      alert: 'PgPoolSaturated',
      severity: 'warning',
      for: '5m',
      expr: `sum by (${POOL}) (${m(PROM.connectionCount, 'db_client_connection_state="used"')})\n/\n${poolMax}\n>= ${t.saturationRatio}`,
      summary: `Pool ${POOL_ID} has all its connections in use.`,
      description: `Pool ${POOL_ID} has {{ $value | humanizePercentage }} of its maximum connections in use; further checkouts queue.`,
    }),
    pool({
      alert: 'PgPoolAcquireTimeouts',
      severity: 'warning',
      for: '0m',
      expr: eventsAbove(m(PROM.timeouts), t.timeoutWindow, POOL, t.timeouts),
      summary: `Checkouts are timing out on pool ${POOL_ID}.`,
      description: `{{ $value | humanize }} checkouts from pool ${POOL_ID} gave up waiting for a connection (connectionTimeoutMillis) in the last ${t.timeoutWindow}.`,
    }),
    pool({
      alert: 'PgPoolCheckoutLeaked',
      severity: 'warning',
      for: '1m',
      expr: `max by (${POOL}) (${m(PROM.leaked)})\n> 0`,
      summary: `Leaked checkouts on pool ${POOL_ID}.`,
      description: `{{ $value | humanize }} connections of pool ${POOL_ID} have been checked out longer than the leak threshold and not released.`,
    }),
    pool({
      alert: 'PgPoolCheckoutLeaksGrowing',
      severity: 'critical',
      for: '10m',
      expr: `max by (${POOL}) (delta(${m(PROM.leaked)}[${t.leakGrowthWindow}]))\n> 0\nand\nmax by (${POOL}) (${m(PROM.leaked)}) > 0`,
      summary: `Leaked checkouts keep growing on pool ${POOL_ID}.`,
      description: `The number of leaked checkouts of pool ${POOL_ID} grew by {{ $value | humanize }} over the last ${t.leakGrowthWindow}; the pool will run out of connections.`,
    }),
    pool({
      alert: 'PgPoolReleasedInTransaction',
      severity: 'warning',
      for: '0m',
      expr: eventsAbove(m(PROM.releasedInTransaction), t.releasedInTransactionWindow, `${POOL}, transaction_status`, 0),
      summary: `Connections returned to pool ${POOL_ID} inside a transaction.`,
      description: `{{ $value | humanize }} clients were released to pool ${POOL_ID} while in a transaction ({{ $labels.transaction_status }}) in the last ${t.releasedInTransactionWindow}; the next user inherits it.`,
    }),
    pool({
      alert: 'PgPoolConnectionChurn',
      severity: 'info',
      for: '10m',
      expr:
        `sum by (${POOL}) (increase(${m(PROM.closed, 'reason="idle_timeout"')}[${t.churnWindow}])) / ${poolMax}\n> ${t.churnRatio}\n` +
        `and\nsum by (${POOL}) (increase(${m(count('createTime'))}[${t.churnWindow}])) / ${poolMax}\n> ${t.churnRatio}`,
      summary: `Pool ${POOL_ID} keeps closing idle connections and opening new ones.`,
      description: `Pool ${POOL_ID} closed {{ $value | humanize }} times its maximum size in connections for idle timeout in the last ${t.churnWindow}, and opened about as many again.`,
    }),
    nearLimit('warning', t.serverWarningRatio, '5m'),
    nearLimit('critical', t.serverCriticalRatio, '2m'),
    server({
      alert: 'PgPoolServerConnectionsFillingUp',
      severity: 'warning',
      for: '10m',
      expr:
        `predict_linear((${used})[${t.serverPredictWindow}:], ${seconds(t.serverPredictHorizon)})\n>= ${usable}\n` +
        `and\n${used}\n/\n${usable}\n> ${t.serverPredictMinRatio}`,
      summary: `PostgreSQL ${SERVER_ID} is predicted to run out of connections within ${t.serverPredictHorizon}.`,
      description: `At the rate of the last ${t.serverPredictWindow}, server ${SERVER_ID} will reach max_connections - reserved within ${t.serverPredictHorizon}; it is already above ${pct(t.serverPredictMinRatio)}.`,
    }),
    server({
      alert: 'PgPoolFleetBudgetOvercommitted',
      severity: 'warning',
      for: '15m',
      expr: `sum by (${SERVER}) ${directPoolMax(s)}\n/\n${usable}\n> 1`,
      summary: `Pools may open more connections than PostgreSQL ${SERVER_ID} accepts.`,
      description: `The maxima of all instrumented pools connecting to ${SERVER_ID} directly add up to {{ $value | humanizePercentage }} of its usable connections (max_connections - reserved); pools behind a pooler are a budget against the pooler and are not counted. Under load some instances will be refused (53300).`,
    }),
    server({
      alert: 'PgPoolServerRefusingConnections',
      severity: 'critical',
      for: '0m',
      expr: eventsAbove(m(PROM.connectionErrors, 'error_type="53300"'), t.refusalWindow, SERVER, 0),
      summary: `PostgreSQL ${SERVER_ID} is refusing connections (too many clients).`,
      description: `{{ $value | humanize }} connection attempts to ${SERVER_ID} failed with SQLSTATE 53300 (too_many_connections) in the last ${t.refusalWindow}.`,
    }),
    pool({
      alert: 'PgPoolPoolsGrowing',
      severity: 'warning',
      for: '5m',
      expr:
        `max by (job, instance) (${m(PROM.pools)}) > ${t.poolsPerProcess}\nand\nmax by (job, instance) (delta(${m(PROM.pools)}[${t.poolsWindow}])) > 0\n` +
        `or\nsum by (job, instance) (increase(${m(PROM.poolsCreated)}[${t.poolsWindow}])) > ${t.poolsCreated}`,
      summary: `{{ $labels.job }}/{{ $labels.instance }} keeps creating connection pools.`,
      description:
        `{{ $labels.job }}/{{ $labels.instance }} has {{ $value | humanize }} pools live (above ${t.poolsPerProcess} and growing) ` +
        `or created in the last ${t.poolsWindow} (above ${t.poolsCreated}). A pool per request defeats pooling.`,
    }),
    server({
      alert: 'PgPoolServerSampleStale',
      severity: 'info',
      for: '5m',
      expr: `time() - max by (${SERVER}) (${m(PROM.serverSampleTimestamp)})\n> ${t.serverSampleStaleSeconds}`,
      summary: `No fresh connection sample from PostgreSQL ${SERVER_ID}.`,
      description: `No process has read max_connections and pg_stat_activity from ${SERVER_ID} for {{ $value | humanizeDuration }}; the server alerts are blind.`,
    }),
  ];
}

function dashboardUrl(c: GeneratorConfig, d: AlertDef): string {
  const q = (v: string, label: string) => `var-${v}={{ $labels.${label} | urlquery }}`;
  if (d.dashboard === 'server') {
    return `${c.grafanaUrl}/d/${c.dashboardUidPrefix}-server?${q('server', 'server_address')}&${q('port', 'server_port')}`;
  }
  const vars = [q('job', 'job'), q('instance', 'instance')];
  if (d.expr.includes('db_client_connection_pool_name')) vars.push(q('pool', 'db_client_connection_pool_name'));
  return `${c.grafanaUrl}/d/${c.dashboardUidPrefix}-service?${vars.join('&')}`;
}

/** Lower-cased alert name: the heading anchor GitHub gives `## PgPoolSaturated`. */
export function runbookAnchor(alert: AlertName): string {
  return alert.toLowerCase();
}

export function alertRules(c: GeneratorConfig): AlertRule[] {
  return definitions(c)
    .filter((d) => !c.disabled.includes(d.alert))
    .map((d) => {
      const forDuration = c.for[d.alert] ?? d.for;
      return {
        alert: d.alert,
        expr: d.expr,
        ...(forDuration === '0m' || forDuration === '0s' ? {} : { for: forDuration }),
        labels: { severity: d.severity },
        annotations: {
          summary: d.summary,
          description: d.description,
          first_steps: firstSteps(d.alert),
          ...(c.runbookBaseUrl ? { runbook_url: `${c.runbookBaseUrl}/docs/runbooks.md#${runbookAnchor(d.alert)}` } : {}),
          dashboard_url: dashboardUrl(c, d),
        },
      };
    });
}

export function ruleFile(c: GeneratorConfig): RuleFile {
  return { groups: [{ name: c.ruleGroup, rules: alertRules(c) }] };
}

export function renderRuleFile(c: GeneratorConfig): string {
  const header = '# Generated by `pg-pool-otel generate`; edit the generator config, not this file.\n';
  return header + stringify(ruleFile(c), { lineWidth: 0, blockQuote: 'literal' });
}
