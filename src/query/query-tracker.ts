// One span and one db.client.operation.duration measurement per client.query() call, in its
// three forms: callback, promise, and Submittable (pg-cursor, pg-query-stream).
import { performance } from 'node:perf_hooks';
import { context, SpanKind, SpanStatusCode, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import type { Callback, PgClient } from '../pg-types';
import type { Instruments } from '../telemetry/instruments';
import type { PgPoolOtelSettings } from '../config';
import { reportInternalError } from '../diag';
import { promiseFromCallback, wrapCallback } from '../callback-form';
import { queryErrorType, sqlState } from '../client/error-type';
import { serverOfClient } from '../pool/pool-identity';
import type { PoolTracker } from '../pool/pool-tracker';
import { BoundedValues } from './bounded-values';
import { queryInfo, type QueryInfo } from './query-info';

interface ClientBase {
  /** server and pool attributes shared by this client's spans and measurements */
  attributes: Attributes;
  /** measurement attributes per (operation, collection), so successful queries allocate nothing */
  byShape: Map<string, Attributes>;
}

interface Submittable {
  text?: unknown;
  cursor?: { text?: unknown };
  submit: Callback;
  handleReadyForQuery?: Callback;
  handleError?: Callback;
  callback?: unknown;
}

const INTERNAL_QUERY = Symbol.for('pg-pool-otel.internal-query');

type QueryConfig = { text?: unknown; callback?: unknown; submit?: unknown };

export class QueryTracker {
  private readonly operations: BoundedValues;
  private readonly collections: BoundedValues;
  private readonly bases = new WeakMap<PgClient, ClientBase>();

  constructor(
    private readonly instruments: () => Instruments | undefined,
    private readonly tracer: () => Tracer,
    private readonly settings: () => PgPoolOtelSettings,
    private readonly pools: PoolTracker
  ) {
    const s = settings();
    this.operations = new BoundedValues(s.maxOperationNames);
    this.collections = new BoundedValues(s.maxCollectionNames);
  }

  /** Runs `original` (Client.prototype.query) for `client` with observation around it. */
  run(client: PgClient, original: Callback, args: unknown[]): unknown {
    const config = args[0] as string | QueryConfig | Submittable | null | undefined;
    if (config == null) return original.apply(client, args); // pg throws its own TypeError
    // The package's own monitoring queries (server sampling) are not the application's.
    if (typeof config === 'object' && (config as Record<symbol, unknown>)[INTERNAL_QUERY]) return original.apply(client, args);
    let finish: ((err: unknown) => void) | undefined;
    try {
      finish = this.start(client, config);
    } catch (e) {
      reportInternalError('query start', e);
    }
    if (!finish) return original.apply(client, args);
    const done = finish;

    if (typeof (config as Submittable).submit === 'function') {
      try {
        hookSubmittable(config as Submittable, done);
      } catch (e) {
        reportInternalError('submittable hook', e);
      }
      return callOriginal(client, original, args, done);
    }
    const [, values, callback] = args;
    if (typeof values === 'function') {
      return callOriginal(client, original, [config, wrapCallback(values as Callback, (a) => done(a[0]))], done);
    }
    if (typeof callback === 'function') {
      return callOriginal(client, original, [config, values, wrapCallback(callback as Callback, (a) => done(a[0]))], done);
    }
    const configCallback = typeof config === 'object' ? config.callback : undefined;
    if (typeof configCallback === 'function') {
      return callOriginal(client, original, [config, values, wrapCallback(configCallback as Callback, (a) => done(a[0]))], done);
    }
    const PromiseImpl = (client as { _Promise?: PromiseConstructor })._Promise;
    let threw = false;
    let thrown: unknown;
    const promise = promiseFromCallback(PromiseImpl, (settle) => {
      const cb = (err: unknown, res?: unknown) => {
        done(err);
        settle(err, res);
      };
      try {
        callOriginal(client, original, values === undefined ? [config, cb] : [config, values, cb], done);
      } catch (err) {
        threw = true;
        thrown = err;
      }
    });
    // pg throws synchronously for some bad arguments; so must we.
    if (threw) throw thrown;
    return promise;
  }

  /** Starts the span and the clock; returns the function that ends both exactly once. */
  private start(client: PgClient, config: string | QueryConfig | Submittable): (err: unknown) => void {
    const text = typeof config === 'string' ? config : textOf(config);
    const info = queryInfo(text);
    const base = this.baseOf(client);
    const waited = this.pools.waitForNextQuery.get(client);
    if (waited !== undefined) this.pools.waitForNextQuery.delete(client);
    const span = this.startSpan(info, base, text, waited);
    const startedAt = performance.now();
    let finished = false;
    return (err: unknown) => {
      if (finished) return;
      finished = true;
      try {
        this.finish(info, base, span, startedAt, err);
      } catch (e) {
        reportInternalError('query finish', e);
      }
    };
  }

  private startSpan(info: QueryInfo, base: ClientBase, text: string, waited: number | undefined): Span | undefined {
    const span = this.tracer().startSpan(info.spanName, { kind: SpanKind.CLIENT }, context.active());
    if (!span.isRecording()) return undefined;
    span.setAttributes(base.attributes);
    if (info.operation) span.setAttribute('db.operation.name', info.operation);
    if (info.collection) span.setAttribute('db.collection.name', info.collection);
    if (info.summary) span.setAttribute('db.query.summary', info.summary);
    if (this.settings().queryText && text) span.setAttribute('db.query.text', info.sanitized());
    if (waited !== undefined) span.setAttribute('pg_pool.connection.wait_time', waited);
    return span;
  }

  private finish(info: QueryInfo, base: ClientBase, span: Span | undefined, startedAt: number, err: unknown): void {
    const seconds = (performance.now() - startedAt) / 1000;
    const instruments = this.instruments();
    if (err) {
      const errorType = queryErrorType(err);
      const status = sqlState(err);
      if (instruments) {
        const attributes: Attributes = { ...this.shapeAttributes(info, base), 'error.type': errorType };
        if (status) attributes['db.response.status_code'] = status;
        instruments.operationDuration.record(seconds, attributes);
      }
      if (span) {
        span.setAttribute('error.type', errorType);
        if (status) span.setAttribute('db.response.status_code', status);
        const message = (err as { message?: unknown }).message;
        span.setStatus({ code: SpanStatusCode.ERROR, message: typeof message === 'string' ? message : undefined });
      }
    } else if (instruments) {
      instruments.operationDuration.record(seconds, this.shapeAttributes(info, base));
    }
    span?.end();
  }

  private shapeAttributes(info: QueryInfo, base: ClientBase): Attributes {
    const operation = info.operation === undefined ? undefined : this.operations.admit(info.operation);
    const collection = info.collection === undefined ? undefined : this.collections.admit(info.collection);
    const key = `${operation ?? ''}\u0000${collection ?? ''}`;
    let attributes = base.byShape.get(key);
    if (!attributes) {
      attributes = { ...base.attributes };
      if (operation) attributes['db.operation.name'] = operation;
      if (collection) attributes['db.collection.name'] = collection;
      base.byShape.set(key, attributes);
    }
    return attributes;
  }

  private baseOf(client: PgClient): ClientBase {
    let base = this.bases.get(client);
    if (!base) {
      const pool = this.pools.poolOf(client);
      const server = pool?.resolved ? pool.server : serverOfClient(client);
      const attributes: Attributes = {
        'db.system.name': 'postgresql',
        'db.namespace': server.namespace,
        'server.address': server.address,
        'server.port': server.port,
      };
      if (pool?.resolved) attributes['db.client.connection.pool.name'] = pool.name;
      base = { attributes, byShape: new Map() };
      this.bases.set(client, base);
    }
    return base;
  }
}

function textOf(config: QueryConfig | Submittable): string {
  const t = config.text ?? (config as Submittable).cursor?.text;
  return typeof t === 'string' ? t : '';
}

function callOriginal(client: PgClient, original: Callback, args: unknown[], done: (err: unknown) => void): unknown {
  // pg before 8.20 writes the callback into the caller's config object; put back what was there so
  // a reused config object behaves as it would without the package.
  const config = args[0];
  const restore = config !== null && typeof config === 'object' ? { had: 'callback' in config, value: (config as QueryConfig).callback } : undefined;
  try {
    return original.apply(client, args);
  } catch (err) {
    done(err);
    throw err;
  } finally {
    if (restore) {
      const c = config as QueryConfig;
      if (restore.had) {
        if (c.callback !== restore.value) c.callback = restore.value;
      } else if ('callback' in c) delete c.callback;
    }
  }
}

/** Submittables report completion through these two methods; hooked on the instance only. */
function hookSubmittable(q: Submittable, done: (err: unknown) => void): void {
  const ready = q.handleReadyForQuery;
  if (typeof ready === 'function') {
    q.handleReadyForQuery = function (this: unknown, ...args: unknown[]) {
      done(undefined);
      return ready.apply(this, args);
    };
  }
  const error = q.handleError;
  if (typeof error === 'function') {
    q.handleError = function (this: unknown, ...args: unknown[]) {
      done(args[0] ?? new Error('query failed'));
      return error.apply(this, args);
    };
  }
}
