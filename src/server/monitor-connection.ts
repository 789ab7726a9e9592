// The package's own monitoring connection: opened for one sample with the connection settings of
// a pool (or client) of the application that targets the server, marked with its own
// application_name, one simple-protocol query, then closed. It never comes from, nor goes back
// to, an application pool, and no instrumentation sees it: pg's own connect() and query() are
// called under every wrapper, and its socket never keeps the process alive.
import type { PgClient } from '../pg/pg-types';
import { sqlState } from '../client/error-type';
import { internalQuery, InternalQueryTimeout, unwrapped } from './internal-query';
import { parseSample, sampleSql, type ServerSample } from './server-sample';

export const MONITOR_APPLICATION_NAME = 'pg-pool-otel monitor';
/** A connect or a sample slower than this means something is wrong: the connection is dropped. */
export const MONITOR_TIMEOUT_MS = 5_000;

export type ClientClass = new (config: Record<string, unknown>) => PgClient;

/** How to open a monitoring connection to one target: pg's Client class and the options to give it. */
export interface MonitorSettings {
  Client: ClientClass;
  config: Readonly<Record<string, unknown>>;
}

export type SampleOutcome =
  /** The server answered. `viaPooler`: the session's backend is not the one the connection announced. */
  | { kind: 'sampled'; sample: ServerSample; viaPooler: boolean; at: number }
  /** The connection was refused because the server is full (53300): that is the sample. */
  | { kind: 'full'; err: unknown }
  /** Connected, but the other end will never run the sample (a pooler's admin console, say). */
  | { kind: 'refused'; err: unknown }
  /** Anything else: tried again at the next interval. */
  | { kind: 'failed'; stage: 'connect' | 'query'; err: unknown };

/** SQLSTATEs that will not change by trying again: the other end does not speak this SQL. */
const REFUSALS = new Set(['08P01', '0A000', '42883', '42P01', '42703', '42601']);

/**
 * The application's own connect timeout, within 1 to 5 s: a server that accepts and never answers
 * holds the monitoring socket no longer than it would hold the application's.
 */
function connectTimeout(appMs: unknown): number {
  const ms = Number(appMs);
  return Number.isFinite(ms) && ms > 0 ? Math.min(MONITOR_TIMEOUT_MS, Math.max(1_000, ms)) : MONITOR_TIMEOUT_MS;
}


/**
 * A copy of the options that keeps the password: pg-pool makes it non-enumerable (to keep it out
 * of stack traces), and a spread drops it. The copy only goes to pg's Client, which hides it again.
 */
function withPassword(config: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...config };
  const password = Object.getOwnPropertyDescriptor(config, 'password');
  if (password && !password.enumerable) copy.password = password.value;
  return copy;
}

/** Opens a connection, reads one sample, closes it; `ownPids` is asked once connected. Never throws. */
export async function sampleServer(settings: MonitorSettings, ownPids: () => Iterable<number>): Promise<SampleOutcome> {
  let client: PgClient;
  try {
    client = new settings.Client({
      ...withPassword(settings.config),
      application_name: MONITOR_APPLICATION_NAME,
      connectionTimeoutMillis: connectTimeout(settings.config.connectionTimeoutMillis),
      keepAlive: false,
    });
    // Our own client: an error on it (the server going away) is ours to swallow, never the app's.
    client.on('error', () => {});
    (client.connection as { stream?: { unref?: () => void } } | undefined)?.stream?.unref?.();
  } catch (err) {
    return { kind: 'failed', stage: 'connect', err };
  }
  try {
    await new Promise<void>((resolve, reject) => {
      try {
        unwrapped(client, 'connect').call(client, (err: unknown) => (err ? reject(err) : resolve()));
      } catch (e) {
        reject(e);
      }
    });
  } catch (err) {
    drop(client);
    return sqlState(err) === '53300' ? { kind: 'full', err } : { kind: 'failed', stage: 'connect', err };
  }
  const announced = client.processID;
  try {
    // This process's backends as of now, once connected: a client that connected meanwhile counts as ours.
    const sql = sampleSql(ownPids());
    // The moment the server's view is of: the query is sent now (Date.now() in seconds).
    const at = Date.now() / 1000;
    const { rows } = await internalQuery(client, sql, MONITOR_TIMEOUT_MS);
    const viaPooler = (backendPid: number) => typeof announced === 'number' && announced !== backendPid;
    const sample = parseSample(rows[0], viaPooler);
    close(client);
    return { kind: 'sampled', sample, viaPooler: viaPooler(sample.backendPid), at };
  } catch (err) {
    if (err instanceof InternalQueryTimeout) drop(client);
    else close(client);
    const code = sqlState(err);
    return code !== undefined && REFUSALS.has(code) ? { kind: 'refused', err } : { kind: 'failed', stage: 'query', err };
  }
}

function close(client: PgClient): void {
  try {
    const ended = (client as { end?: () => unknown }).end?.();
    if (ended instanceof Promise) ended.catch(() => {});
  } catch {
    drop(client);
  }
}

/** For a connection in an unknown state: the socket is destroyed, no goodbye. */
function drop(client: PgClient): void {
  try {
    (client.connection as { stream?: { destroy?: () => void } } | undefined)?.stream?.destroy?.();
  } catch {
    // nothing left to close
  }
}
