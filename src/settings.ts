// Settings: one table of every PG_POOL_OTEL_* variable with its default and accepted values.
// A bad value never stops the application: it is reported once, naming the variable, the value
// and what is accepted, and the default is used.
import type { InstrumentationConfig } from '@opentelemetry/instrumentation';
import { log, type LogLevel } from './diag';

export type ReleaseInTransactionAction = 'report' | 'destroy';

/** Settings of the instrumentation; every field can also come from a PG_POOL_OTEL_* variable. */
export interface PgPoolOtelSettings {
  /** Record `db.query.text` (literals replaced by `?`) on spans. */
  queryText: boolean;
  /** Capture the caller's stack at checkout, for leak reports. */
  captureStacks: boolean;
  /** Stack captures per second at most, per process; 0: no limit (every checkout is captured). */
  stackCapturesPerSecond: number;
  /** A checkout held longer than this is reported as leaked; 0 turns detection off. */
  leakThresholdMs: number;
  /** How often held checkouts are checked against the threshold. */
  leakCheckIntervalMs: number;
  /** A checkout queued longer than this gets an exhaustion report (who holds the pool); 0 turns that off. */
  slowWaitMs: number;
  /** What to do with a client returned to the pool inside an open transaction. */
  releaseInTransaction: ReleaseInTransactionAction;
  /** Warn once when more than this many pools are created within `poolBurstWindowMs`; 0 turns it off. */
  poolBurstCount: number;
  poolBurstWindowMs: number;
  /** Log advice about risky pool options once per pool. */
  configAdvice: boolean;
  /** How often pg_stat_activity is sampled per server; 0 turns sampling off. */
  serverSampleIntervalMs: number;
  /** Distinct `db.operation.name` values kept before the rest are reported as `other`. */
  maxOperationNames: number;
  /** Distinct `db.collection.name` values kept before the rest are reported as `other`. */
  maxCollectionNames: number;
  /** The package's own log level on stderr. */
  logLevel: LogLevel;
}

export interface PgPoolInstrumentationConfig extends InstrumentationConfig, Partial<PgPoolOtelSettings> {}

interface Spec<K extends keyof PgPoolOtelSettings> {
  key: K;
  env: string;
  default: PgPoolOtelSettings[K];
  /** A default that depends on the environment, when it differs from `default` there. */
  defaultIn?(env: NodeJS.ProcessEnv): PgPoolOtelSettings[K];
  parse(raw: string): PgPoolOtelSettings[K] | undefined;
  accepts: string;
}

function integer(min: number, max: number) {
  return (raw: string): number | undefined => {
    const s = raw.trim();
    if (!/^\d+$/.test(s)) return undefined;
    const n = Number(s);
    return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
  };
}

function boolean(raw: string): boolean | undefined {
  const s = raw.trim().toLowerCase();
  if (['true', '1', 'on', 'yes'].includes(s)) return true;
  if (['false', '0', 'off', 'no'].includes(s)) return false;
  return undefined;
}

function oneOf<T extends string>(...values: T[]) {
  return (raw: string): T | undefined => {
    const s = raw.trim().toLowerCase();
    return (values as string[]).includes(s) ? (s as T) : undefined;
  };
}

const DAY_MS = 86_400_000;
const STACK_CAPTURES_PER_SECOND = 200;
const BOOL = 'true or false (also 1/0, on/off, yes/no)';

export const SETTINGS: { [K in keyof PgPoolOtelSettings]: Spec<K> } = {
  queryText: { key: 'queryText', env: 'PG_POOL_OTEL_QUERY_TEXT', default: true, parse: boolean, accepts: BOOL },
  captureStacks: {
    key: 'captureStacks',
    env: 'PG_POOL_OTEL_CAPTURE_STACKS',
    default: true,
    parse: boolean,
    accepts: BOOL,
  },
  stackCapturesPerSecond: {
    key: 'stackCapturesPerSecond',
    env: 'PG_POOL_OTEL_STACK_CAPTURES_PER_SECOND',
    default: STACK_CAPTURES_PER_SECOND,
    // A test suite is where a leak should be named the first time, and its cost does not matter.
    defaultIn: (env) => (underTestRunner(env) ? 0 : STACK_CAPTURES_PER_SECOND),
    parse: integer(0, 1_000_000),
    accepts: 'a whole number from 0 to 1000000 (0: no limit, every checkout is captured)',
  },
  leakThresholdMs: {
    key: 'leakThresholdMs',
    env: 'PG_POOL_OTEL_LEAK_THRESHOLD_MS',
    default: 30_000,
    parse: integer(0, DAY_MS),
    accepts: `a whole number of milliseconds from 0 to ${DAY_MS} (0 turns leak detection off)`,
  },
  leakCheckIntervalMs: {
    key: 'leakCheckIntervalMs',
    env: 'PG_POOL_OTEL_LEAK_CHECK_INTERVAL_MS',
    default: 1_000,
    parse: integer(10, 3_600_000),
    accepts: 'a whole number of milliseconds from 10 to 3600000',
  },
  slowWaitMs: {
    key: 'slowWaitMs',
    env: 'PG_POOL_OTEL_SLOW_WAIT_MS',
    default: 5_000,
    parse: integer(0, DAY_MS),
    accepts: `a whole number of milliseconds from 0 to ${DAY_MS} (0 turns slow-wait reports off)`,
  },
  releaseInTransaction: {
    key: 'releaseInTransaction',
    env: 'PG_POOL_OTEL_RELEASE_IN_TRANSACTION',
    default: 'report',
    parse: oneOf<ReleaseInTransactionAction>('report', 'destroy'),
    accepts: "'report' (count and log) or 'destroy' (also close the client instead of reusing it)",
  },
  poolBurstCount: {
    key: 'poolBurstCount',
    env: 'PG_POOL_OTEL_POOL_BURST_COUNT',
    default: 10,
    parse: integer(0, 1_000_000),
    accepts: 'a whole number from 0 to 1000000 (0 turns the warning off)',
  },
  poolBurstWindowMs: {
    key: 'poolBurstWindowMs',
    env: 'PG_POOL_OTEL_POOL_BURST_WINDOW_MS',
    default: 60_000,
    parse: integer(1, DAY_MS),
    accepts: `a whole number of milliseconds from 1 to ${DAY_MS}`,
  },
  configAdvice: {
    key: 'configAdvice',
    env: 'PG_POOL_OTEL_CONFIG_ADVICE',
    default: true,
    parse: boolean,
    accepts: BOOL,
  },
  serverSampleIntervalMs: {
    key: 'serverSampleIntervalMs',
    env: 'PG_POOL_OTEL_SERVER_SAMPLE_INTERVAL_MS',
    default: 30_000,
    parse: (raw) => {
      const n = integer(0, DAY_MS)(raw);
      return n === undefined || (n > 0 && n < 100) ? undefined : n;
    },
    accepts: `0 (off) or a whole number of milliseconds from 100 to ${DAY_MS}`,
  },
  maxOperationNames: {
    key: 'maxOperationNames',
    env: 'PG_POOL_OTEL_MAX_OPERATION_NAMES',
    default: 50,
    parse: integer(1, 10_000),
    accepts: 'a whole number from 1 to 10000',
  },
  maxCollectionNames: {
    key: 'maxCollectionNames',
    env: 'PG_POOL_OTEL_MAX_COLLECTION_NAMES',
    default: 200,
    parse: integer(1, 10_000),
    accepts: 'a whole number from 1 to 10000',
  },
  logLevel: {
    key: 'logLevel',
    env: 'PG_POOL_OTEL_LOG_LEVEL',
    default: 'info',
    parse: oneOf<LogLevel>('error', 'warn', 'info', 'debug'),
    accepts: 'error, warn, info or debug',
  },
};

/** Set by node --test (inherited by the processes a test starts), Jest, Vitest and Mocha's convention. */
export function underTestRunner(env: NodeJS.ProcessEnv): boolean {
  return env.NODE_ENV === 'test' || env.NODE_TEST_CONTEXT !== undefined || env.JEST_WORKER_ID !== undefined || env.VITEST !== undefined;
}

export function describeRejected(name: string, value: unknown, accepts: string, fallback: unknown): string {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return `${name}=${shown} is not valid: expected ${accepts}; using the default ${String(fallback)}.`;
}

function resolveOne<K extends keyof PgPoolOtelSettings>(
  spec: Spec<K>,
  given: PgPoolOtelSettings[K] | undefined,
  env: NodeJS.ProcessEnv,
  problems: string[]
): PgPoolOtelSettings[K] {
  const fallback = spec.defaultIn ? spec.defaultIn(env) : spec.default;
  if (given !== undefined) {
    // A programmatic value goes through the same validation as its variable.
    const ok = spec.parse(String(given));
    if (ok !== undefined && typeof ok === typeof spec.default) return ok;
    problems.push(describeRejected(`config.${spec.key}`, given, spec.accepts, fallback));
    return fallback;
  }
  const raw = env[spec.env];
  if (raw === undefined) return fallback;
  const parsed = spec.parse(raw);
  if (parsed !== undefined) return parsed;
  problems.push(describeRejected(spec.env, raw, spec.accepts, fallback));
  return fallback;
}

/** Programmatic values win over variables, variables over defaults. Problems are logged once each. */
export function resolveSettings(
  given: Partial<PgPoolOtelSettings> = {},
  env: NodeJS.ProcessEnv = process.env
): PgPoolOtelSettings {
  const problems: string[] = [];
  const out = {} as Record<keyof PgPoolOtelSettings, unknown>;
  for (const key of Object.keys(SETTINGS) as (keyof PgPoolOtelSettings)[]) {
    out[key] = resolveOne(SETTINGS[key] as Spec<typeof key>, given[key] as never, env, problems);
  }
  for (const p of problems) reportSettingProblem(p);
  return out as PgPoolOtelSettings;
}

const reported = new Set<string>();
export function reportSettingProblem(message: string): void {
  if (reported.has(message)) return;
  reported.add(message);
  log().warn(message);
}
