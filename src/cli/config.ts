// The generator's input: where the metrics are (selectors), when to alert (thresholds and
// windows), and where the runbooks and dashboards live. Everything has a default, so a user's
// config file only names what it changes.

export interface Thresholds {
  /** PgPoolRequestsQueued: fraction (0..1) of `queuedWindow` during which requests were queued. */
  queuedFraction: number;
  queuedWindow: string;
  /** PgPoolWaitTimeHigh: p95 of the time to get a connection, in seconds. */
  waitP95Seconds: number;
  /** PgPoolSaturated: used/max at or above this ratio. */
  saturationRatio: number;
  /** PgPoolAcquireTimeouts: more than this many timeouts per pool within `timeoutWindow`. */
  timeouts: number;
  timeoutWindow: string;
  /** PgPoolCheckoutLeaksGrowing: window over which the leaked count must have grown. */
  leakGrowthWindow: string;
  /** PgPoolReleasedInTransaction: window in which any release inside a transaction counts. */
  releasedInTransactionWindow: string;
  /** PgPoolConnectionChurn: connections closed for idle timeout (and opened) within
   * `churnWindow`, as a multiple of the pool's max. */
  churnRatio: number;
  churnWindow: string;
  /** PgPoolServerConnectionsNearLimit: fraction of the usable limit (warning, critical). */
  serverWarningRatio: number;
  serverCriticalRatio: number;
  /** PgPoolServerConnectionsFillingUp: linear prediction over `serverPredictWindow`,
   * `serverPredictHorizon` ahead, once usage is above `serverPredictMinRatio`. */
  serverPredictWindow: string;
  serverPredictHorizon: string;
  serverPredictMinRatio: number;
  /** PgPoolServerRefusingConnections: window for 53300 errors. */
  refusalWindow: string;
  /** PgPoolPoolsGrowing: live pools per process above this and growing, or more than
   * `poolsCreated` pools created within `poolsWindow`. */
  poolsPerProcess: number;
  poolsCreated: number;
  poolsWindow: string;
  /** PgPoolServerSampleStale: seconds since the last good max_connections/pg_stat_activity sample. */
  serverSampleStaleSeconds: number;
}

/** Names of every generated alert (also the runbook anchors, lower-cased). */
export const ALERT_NAMES = [
  'PgPoolRequestsQueued',
  'PgPoolWaitTimeHigh',
  'PgPoolSaturated',
  'PgPoolAcquireTimeouts',
  'PgPoolCheckoutLeaked',
  'PgPoolCheckoutLeaksGrowing',
  'PgPoolReleasedInTransaction',
  'PgPoolConnectionChurn',
  'PgPoolServerConnectionsNearLimit',
  'PgPoolServerConnectionsFillingUp',
  'PgPoolFleetBudgetOvercommitted',
  'PgPoolServerRefusingConnections',
  'PgPoolPoolsGrowing',
  'PgPoolServerSampleStale',
] as const;
export type AlertName = (typeof ALERT_NAMES)[number];

export interface GeneratorConfig {
  /** PromQL label matchers added to every selector, e.g. `job=~"api|worker"`; empty for all. */
  selector: string;
  /**
   * Where you serve the generated docs/runbooks.md: `runbook_url` is
   * `<runbookBaseUrl>/docs/runbooks.md#<alert name in lower case>`. Empty (the default) leaves
   * `runbook_url` out: the package has no address of its own that would serve them.
   */
  runbookBaseUrl: string;
  /** Grafana's root URL for `dashboard_url`; empty gives a root-relative link (`/d/<uid>?...`). */
  grafanaUrl: string;
  /** Prefix of the dashboards' uids (`<prefix>-service`, `<prefix>-server`). */
  dashboardUidPrefix: string;
  /** Rule group name in the rules file. */
  ruleGroup: string;
  thresholds: Thresholds;
  /** Per-alert pending period (`for`) overrides, e.g. {"PgPoolSaturated": "10m"}. */
  for: Partial<Record<AlertName, string>>;
  /** Alerts to leave out of the rules file. */
  disabled: AlertName[];
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  queuedFraction: 0.5,
  queuedWindow: '10m',
  waitP95Seconds: 0.1,
  saturationRatio: 1,
  timeouts: 0,
  timeoutWindow: '5m',
  leakGrowthWindow: '30m',
  releasedInTransactionWindow: '10m',
  churnRatio: 1,
  churnWindow: '15m',
  serverWarningRatio: 0.8,
  serverCriticalRatio: 0.95,
  serverPredictWindow: '30m',
  serverPredictHorizon: '1h',
  serverPredictMinRatio: 0.5,
  refusalWindow: '5m',
  poolsPerProcess: 10,
  poolsCreated: 20,
  poolsWindow: '15m',
  serverSampleStaleSeconds: 300,
};

export const DEFAULT_CONFIG: GeneratorConfig = {
  selector: '',
  runbookBaseUrl: '',
  grafanaUrl: '',
  dashboardUidPrefix: 'pg-pool-otel',
  ruleGroup: 'pg-pool-otel',
  thresholds: DEFAULT_THRESHOLDS,
  for: {},
  disabled: [],
};

const DURATION = /^([0-9]+(ms|s|m|h|d|w|y))+$/;

/** Merges a user's (parsed JSON) config over the defaults; throws on unknown keys or bad values. */
export function resolveConfig(input: unknown): GeneratorConfig {
  const raw = asObject(input, 'config');
  const known = Object.keys(DEFAULT_CONFIG);
  for (const k of Object.keys(raw)) if (!known.includes(k)) throw new Error(`config: unknown key "${k}" (known: ${known.join(', ')})`);
  const t = asObject(raw.thresholds ?? {}, 'thresholds');
  const thresholds: Thresholds = { ...DEFAULT_THRESHOLDS };
  for (const [k, v] of Object.entries(t)) {
    if (!(k in DEFAULT_THRESHOLDS)) throw new Error(`config: unknown threshold "${k}"`);
    const key = k as keyof Thresholds;
    const expected = typeof DEFAULT_THRESHOLDS[key];
    if (typeof v !== expected) throw new Error(`config: thresholds.${k} must be a ${expected}`);
    if (typeof v === 'string' && !DURATION.test(v)) throw new Error(`config: thresholds.${k} is not a Prometheus duration: "${v}"`);
    if (typeof v === 'number' && !(Number.isFinite(v) && v >= 0)) throw new Error(`config: thresholds.${k} must be a number >= 0`);
    (thresholds as unknown as Record<string, unknown>)[key] = v;
  }
  const forOverrides = asObject(raw.for ?? {}, 'for') as Record<string, unknown>;
  for (const [k, v] of Object.entries(forOverrides)) {
    checkAlertName(k, 'for');
    if (typeof v !== 'string' || !DURATION.test(v)) throw new Error(`config: for.${k} is not a Prometheus duration`);
  }
  const disabled = raw.disabled ?? [];
  if (!Array.isArray(disabled)) throw new Error('config: disabled must be an array of alert names');
  for (const d of disabled) checkAlertName(d, 'disabled');
  const str = (k: 'selector' | 'runbookBaseUrl' | 'grafanaUrl' | 'dashboardUidPrefix' | 'ruleGroup'): string => {
    const v = raw[k] ?? DEFAULT_CONFIG[k];
    if (typeof v !== 'string') throw new Error(`config: ${k} must be a string`);
    return v;
  };
  const runbookBaseUrl = str('runbookBaseUrl').trim().replace(/\/+$/, '');
  if (runbookBaseUrl !== '' && !/^https?:\/\/[^/\s]+/.test(runbookBaseUrl)) {
    throw new Error(`config: runbookBaseUrl must be an http(s) URL (where you serve docs/runbooks.md), not "${runbookBaseUrl}"`);
  }
  return {
    selector: str('selector').trim().replace(/^\{|\}$/g, '').trim(),
    runbookBaseUrl,
    grafanaUrl: str('grafanaUrl').replace(/\/+$/, ''),
    dashboardUidPrefix: str('dashboardUidPrefix'),
    ruleGroup: str('ruleGroup'),
    thresholds,
    for: forOverrides as Partial<Record<AlertName, string>>,
    disabled: disabled as AlertName[],
  };
}

function asObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`config: ${what} must be an object`);
  return v as Record<string, unknown>;
}

function checkAlertName(name: unknown, where: string): void {
  if (!(ALERT_NAMES as readonly unknown[]).includes(name)) {
    throw new Error(`config: ${where}: unknown alert "${String(name)}" (known: ${ALERT_NAMES.join(', ')})`);
  }
}
