// One span and one db.client.operation.duration measurement per client.query() call, in its three
// forms: callback, promise, and Submittable (pg-cursor, pg-query-stream). What a query text says
// is computed once per distinct text (query-info.ts); what a (pool, text) pair records into — its
// attributes and its histogram series — once per pair (QueryShape), so a query costs two map
// lookups, a clock read on each side and one histogram update, plus the span when one is recording.
import { performance } from 'node:perf_hooks';
import { ProxyTracerProvider, SpanKind, SpanStatusCode, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import type { Callback, PgClient } from '../pg/pg-types';
import type { PgPoolOtelSettings } from '../settings';
import { reportInternalError } from '../diag';
import { ProxyTracer } from '../otel-api';
import { promiseFromCallback } from '../pg/callback-form';
import { queryErrorType, sqlState } from '../client/error-type';
import { PoolEntry } from '../pool/pool-entry';
import { serverAttributes, serverOfClient } from '../pool/pool-identity';
import type { TrackedPool } from '../pool/tracked-pool';
import { METRICS } from '../telemetry/catalogue';
import type { MetricStore } from '../telemetry/metric-store';
import type { HistogramSeries } from '../telemetry/series';
import { BoundedValues } from '../telemetry/bounded-values';
import { queryInfo, type QueryInfo } from '../sql/query-info';
import { INTERNAL_QUERY } from '../pg/pg-types';

/** What a query text records into, for one pool (or one server's bare clients). */
class QueryShape {
  spanAttributes: Attributes | undefined;
  constructor(
    readonly metricAttributes: Attributes,
    readonly series: HistogramSeries
  ) {}
}

/** The attributes shared by every query of one pool, or of one server's bare clients. */
class QueryBase {
  readonly shapes = new WeakMap<QueryInfo, QueryShape>();
  readonly failures = new Map<string, HistogramSeries>();
  constructor(readonly attributes: Attributes) {}
}

interface Submittable {
  text?: unknown;
  cursor?: { text?: unknown };
  submit: Callback;
  handleReadyForQuery?: Callback;
  handleError?: Callback;
  callback?: unknown;
}

// Module-private: a bare client's base, found in one property read.
const BASE = Symbol('pg-pool-otel.query-base');

type QueryConfig = { text?: unknown; callback?: unknown; submit?: unknown };

/** The tracer the instrumentation currently has; replaced when the tracer provider changes. */
export interface TracerHolder {
  tracer: Tracer;
}

export class QueryTracker {
  private readonly operations: BoundedValues;
  private readonly collections: BoundedValues;
  private readonly serverBases = new Map<string, QueryBase>();
  /** Each pool's query attributes and series, found in one lookup per query. */
  private readonly poolBases = new WeakMap<TrackedPool, QueryBase>();

  constructor(
    private readonly store: MetricStore,
    private readonly tracing: TracerHolder,
    private readonly settings: PgPoolOtelSettings
  ) {
    this.operations = new BoundedValues(settings.maxOperationNames);
    this.collections = new BoundedValues(settings.maxCollectionNames);
  }

  /** Runs `original` (Client.prototype.query) for `client` with observation around it. */
  run(client: PgClient, original: Callback, argc: number, config: unknown, values: unknown, callback: unknown): unknown {
    // pg throws its own TypeError for a missing config; the package's own monitoring queries
    // (server sampling) are not the application's.
    if (config == null || (typeof config === 'object' && (config as Record<symbol, unknown>)[INTERNAL_QUERY])) {
      return callWith(client, original, argc, config, values, callback);
    }
    let q: RunningQuery | undefined;
    try {
      q = this.start(client, config as string | QueryConfig);
    } catch (e) {
      reportInternalError('query start', e);
    }
    if (!q) return callWith(client, original, argc, config, values, callback);

    if (typeof (config as Submittable).submit === 'function') {
      try {
        hookSubmittable(config as Submittable, q);
      } catch (e) {
        reportInternalError('submittable hook', e);
      }
      return callOriginal(client, original, argc, config, values, callback, q);
    }
    if (typeof values === 'function') return callOriginal(client, original, 2, config, q.wrap(values as Callback), undefined, q);
    if (typeof callback === 'function') return callOriginal(client, original, 3, config, values, q.wrap(callback as Callback), q);
    const configCallback = typeof config === 'object' ? (config as QueryConfig).callback : undefined;
    if (typeof configCallback === 'function') {
      return callOriginal(client, original, 3, config, values, q.wrap(configCallback as Callback), q);
    }
    const PromiseImpl = (client as { _Promise?: PromiseConstructor })._Promise;
    const running = q;
    let threw = false;
    let thrown: unknown;
    const promise = promiseFromCallback(PromiseImpl, (settle) => {
      const cb = (err: unknown, res?: unknown) => {
        running.finish(err);
        settle(err, res);
      };
      try {
        if (values === undefined) callOriginal(client, original, 2, config, cb, undefined, running);
        else callOriginal(client, original, 3, config, values, cb, running);
      } catch (err) {
        threw = true;
        thrown = err;
      }
    });
    // pg throws synchronously for some bad arguments; so must we.
    if (threw) throw thrown;
    return promise;
  }

  private start(client: PgClient, config: string | QueryConfig | Submittable): RunningQuery {
    const text = typeof config === 'string' ? config : textOf(config);
    const info = queryInfo(text);
    const entry = PoolEntry.of(client);
    const base = entry ? this.poolBase(entry.pool) : this.bareBase(client);
    let shape: QueryShape | undefined;
    if (info.lastOwner === base) shape = info.lastShape as QueryShape;
    else {
      shape = base.shapes.get(info);
      if (!shape) base.shapes.set(info, (shape = this.shapeOf(base, info)));
      info.lastOwner = base;
      info.lastShape = shape;
    }
    // A pool.query()'s query starts in the same synchronous run as its checkout was handed over:
    // that clock reading serves for both, and the entry knows how long the checkout waited.
    const poolQuery = entry?.takePoolQuery() !== undefined;
    const waited = poolQuery ? (entry!.acquiredAt - entry!.requestedAt) / 1000 : undefined;
    const span = this.startSpan(info, shape, base, waited);
    return new RunningQuery(this, base, shape, span, poolQuery ? entry!.acquiredAt : performance.now());
  }

  private startSpan(info: QueryInfo, shape: QueryShape, base: QueryBase, waited: number | undefined): Span | undefined {
    const tracer = liveTracer(this.tracing.tracer);
    // No tracer provider registered: no span object at all, not even a non-recording one.
    if (tracer === undefined) return undefined;
    // Attributes go in with the start, so a sampler sees them; built once per (pool, text).
    const attributes = (shape.spanAttributes ??= this.spanAttributes(info, base));
    const span = tracer.startSpan(info.spanName, { kind: SpanKind.CLIENT, attributes });
    if (!span.isRecording()) return undefined;
    if (waited !== undefined) span.setAttribute('pg_pool.connection.wait_time', waited);
    return span;
  }

  private spanAttributes(info: QueryInfo, base: QueryBase): Attributes {
    const a: Attributes = { ...base.attributes };
    if (info.operation) a['db.operation.name'] = info.operation;
    if (info.collection) a['db.collection.name'] = info.collection;
    if (info.summary) a['db.query.summary'] = info.summary;
    if (this.settings.queryText && info.text) a['db.query.text'] = info.sanitized();
    return Object.freeze(a);
  }

  /** Metric attributes never carry the text; operation and collection names are bounded. */
  private shapeOf(base: QueryBase, info: QueryInfo): QueryShape {
    const a: Attributes = { ...base.attributes };
    const operation = info.operation === undefined ? undefined : this.operations.admit(info.operation);
    const collection = info.collection === undefined ? undefined : this.collections.admit(info.collection);
    if (operation) a['db.operation.name'] = operation;
    if (collection) a['db.collection.name'] = collection;
    return new QueryShape(a, this.store.histogram(METRICS.operationDuration, a));
  }

  /** The series of a failed query: by shape, error type and SQLSTATE. */
  failureSeries(base: QueryBase, shape: QueryShape, errorType: string, status: string | undefined): HistogramSeries {
    const key = `${shape.series.attributes['db.operation.name'] ?? ''}\u0000${shape.series.attributes['db.collection.name'] ?? ''}\u0000${errorType}\u0000${status ?? ''}`;
    let series = base.failures.get(key);
    if (!series) {
      const a: Attributes = { ...shape.metricAttributes, 'error.type': errorType };
      if (status) a['db.response.status_code'] = status;
      base.failures.set(key, (series = this.store.histogram(METRICS.operationDuration, a)));
    }
    return series;
  }

  private poolBase(pool: TrackedPool): QueryBase {
    let base = this.poolBases.get(pool);
    if (!base) {
      base = new QueryBase(Object.freeze({ 'db.system.name': 'postgresql', ...pool.attributes }));
      this.poolBases.set(pool, base);
    }
    return base;
  }

  private bareBase(client: PgClient): QueryBase {
    const own = (client as PgClient & { [BASE]?: QueryBase })[BASE];
    if (own) return own;
    const server = serverOfClient(client);
    const key = `${server.address}\u0000${server.port}\u0000${server.namespace}`;
    let base = this.serverBases.get(key);
    if (!base) {
      base = new QueryBase(Object.freeze({ 'db.system.name': 'postgresql', ...serverAttributes(server) }));
      this.serverBases.set(key, base);
    }
    Object.defineProperty(client, BASE, { value: base, configurable: true, enumerable: false, writable: true });
    return base;
  }
}

/** One query in flight: ends its span and records its duration exactly once. */
class RunningQuery {
  private finished = false;

  constructor(
    private readonly tracker: QueryTracker,
    private readonly base: QueryBase,
    private readonly shape: QueryShape,
    private readonly span: Span | undefined,
    private readonly startedAt: number
  ) {}

  /** The caller's callback, preceded by the end of this query. */
  wrap(cb: Callback): Callback {
    const q = this;
    // pg calls back with (err, result); named, so no arguments object per query.
    return function queryDone(this: unknown, err: unknown, result: unknown) {
      q.finish(err);
      return cb.call(this, err, result);
    };
  }

  finish(err: unknown): void {
    if (this.finished) return;
    this.finished = true;
    try {
      const seconds = (performance.now() - this.startedAt) / 1000;
      const span = this.span;
      if (!err) {
        this.shape.series.record(seconds);
        span?.end();
        return;
      }
      const errorType = queryErrorType(err);
      const status = sqlState(err);
      this.tracker.failureSeries(this.base, this.shape, errorType, status).record(seconds);
      if (span) {
        span.setAttribute('error.type', errorType);
        if (status) span.setAttribute('db.response.status_code', status);
        const message = (err as { message?: unknown }).message;
        span.setStatus({ code: SpanStatusCode.ERROR, message: typeof message === 'string' ? message : undefined });
        span.end();
      }
    } catch (e) {
      reportInternalError('query finish', e);
    }
  }
}

// The API's own no-op tracer, which a ProxyTracer hands out while no provider is registered: a
// ProxyTracer of a provider without a delegate returns it.
type Delegating = { _getTracer(): Tracer };
const NOOP_TRACER = (new ProxyTracerProvider().getTracer('pg-pool-otel') as unknown as Delegating)._getTracer();
const NOOP_TRACER_CLASS = NOOP_TRACER.constructor;

/**
 * The tracer that would make the span, or undefined when it is the API's no-op one. The
 * instrumentation's tracer is the global ProxyTracer until a provider is set, and that proxy asks
 * for a delegate on every start: a provider registered later is seen at the next query.
 */
function liveTracer(tracer: Tracer): Tracer | undefined {
  const resolved = tracer instanceof ProxyTracer ? (tracer as unknown as Delegating)._getTracer() : tracer;
  return resolved === NOOP_TRACER || resolved instanceof NOOP_TRACER_CLASS ? undefined : resolved;
}

function textOf(config: QueryConfig | Submittable): string {
  const t = config.text ?? (config as Submittable).cursor?.text;
  return typeof t === 'string' ? t : '';
}

/** Calls pg's query() with the same number of arguments the caller gave. */
function callWith(client: PgClient, original: Callback, argc: number, a: unknown, b: unknown, c: unknown): unknown {
  if (argc <= 1) return original.call(client, a);
  if (argc === 2) return original.call(client, a, b);
  return original.call(client, a, b, c);
}

function callOriginal(client: PgClient, original: Callback, argc: number, config: unknown, b: unknown, c: unknown, q: RunningQuery): unknown {
  if (config === null || typeof config !== 'object') {
    try {
      return callWith(client, original, argc, config, b, c);
    } catch (err) {
      q.finish(err);
      throw err;
    }
  }
  // pg before 8.20 writes the callback into the caller's config object; put back what was there so
  // a reused config object behaves as it would without the package.
  const c0 = config as QueryConfig;
  const had = 'callback' in c0;
  const value = c0.callback;
  try {
    return callWith(client, original, argc, config, b, c);
  } catch (err) {
    q.finish(err);
    throw err;
  } finally {
    if (had) {
      if (c0.callback !== value) c0.callback = value;
    } else if ('callback' in c0) delete c0.callback;
  }
}

/** Submittables report completion through these two methods; hooked on the instance only. */
function hookSubmittable(q: Submittable, running: RunningQuery): void {
  const done = (err: unknown) => running.finish(err);
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
