// The parts of pg and pg-pool objects this package reads. pg is a peer dependency and may be any
// release from 8.7 on, so nothing here is imported from it: every field is optional unless all
// supported releases have it.
import type { EventEmitter } from 'node:events';

export type Callback = (...args: unknown[]) => unknown;

/**
 * Set on every pg and pg-pool prototype the instrumentation patched (registered, so every copy of
 * the package sees it): a resource whose class carries it is a pg client.
 */
export const PATCHED = Symbol.for('pg-pool-otel.patched');

/** Set on the package's own monitoring query configs, for hooks that check it instead of being bypassed. */
export const INTERNAL_QUERY = Symbol.for('pg-pool-otel.internal-query');

export interface PgClient extends EventEmitter {
  host?: string;
  port?: number | string;
  database?: string;
  user?: string;
  processID?: number;
  connection?: EventEmitter;
  _queryable?: boolean;
  _ending?: boolean;
  _poolUseCount?: number;
  getTransactionStatus?: () => string | null;
  /** What pg resolved from the options, the URL and the PG* variables. */
  connectionParameters?: { application_name?: unknown };
  query(...args: unknown[]): unknown;
  connect(...args: unknown[]): unknown;
}

export interface PgPoolOptions {
  max?: number;
  min?: number;
  idleTimeoutMillis?: number;
  connectionTimeoutMillis?: number;
  maxUses?: number;
  maxLifetimeSeconds?: number;
  application_name?: string;
  host?: string;
  port?: number | string;
  database?: string;
  user?: string;
  connectionString?: string;
  [key: string]: unknown;
}

export interface PgPool extends EventEmitter {
  options: PgPoolOptions;
  totalCount: number;
  idleCount: number;
  waitingCount: number;
  ending?: boolean;
  ended?: boolean;
  _expired?: WeakSet<PgClient>;
  _clients?: PgClient[];
  connect(...args: unknown[]): unknown;
}

/** A pg error as it reaches callbacks: DatabaseError has a SQLSTATE `code`, socket errors an errno `code`. */
export interface PgErrorLike {
  code?: unknown;
  name?: unknown;
  message?: unknown;
}
