// The floor: the least an instrumentation can do to make one OpenTelemetry span per query. It
// wraps pg's `Client.prototype.query` (which `pool.query()` calls too), starts one SDK span with
// seven attributes and ends it when the query settles. No metrics, no context binding, no SQL
// parsing beyond a cached first-word/target guess: what is left is the SDK's own cost per span,
// which the span configurations are measured against.
import { SpanKind, SpanStatusCode, type Attributes, type Tracer } from '@opentelemetry/api';

/** The seven attributes, in the order they are set. */
export const FLOOR_ATTRIBUTES = [
  'db.system.name',
  'db.namespace',
  'server.address',
  'server.port',
  'db.operation.name',
  'db.query.summary',
  'db.query.text',
] as const;

interface Shape {
  operation: string;
  /** `{operation} {table}` when a table follows FROM/INTO/UPDATE/JOIN, else the operation: also the span name */
  summary: string;
}

/** Per distinct query text, bounded: a real instrumentation would not re-analyse `SELECT 1` each time either. */
const shapes = new Map<string, Shape>();
const MAX_SHAPES = 1000;

function shapeOf(text: string): Shape {
  let shape = shapes.get(text);
  if (shape === undefined) {
    const operation = (/^\s*([A-Za-z]+)/.exec(text)?.[1] ?? 'QUERY').toUpperCase();
    const table = /\b(?:FROM|INTO|UPDATE|JOIN)\s+([\w."]+)/i.exec(text)?.[1];
    shape = { operation, summary: table ? `${operation} ${table}` : operation };
    if (shapes.size >= MAX_SHAPES) shapes.clear();
    shapes.set(text, shape);
  }
  return shape;
}

type Callback = (err: unknown, res?: unknown) => void;
type QueryFn = (this: FloorClient, config: unknown, values?: unknown, callback?: unknown) => unknown;
interface FloorClient {
  database?: string;
  host?: string;
  port?: number;
}

/** Patches `Client.prototype.query` of the given pg module; returns the function that restores it. */
export function installFloor(pg: typeof import('pg'), tracer: Tracer): () => void {
  const proto = pg.Client.prototype as unknown as { query: QueryFn };
  const original = proto.query;

  proto.query = function floorQuery(this: FloorClient, config: unknown, values?: unknown, callback?: unknown): unknown {
    // Cursors and streams (submittables) are returned as they are: the benchmark runs none.
    if (config == null || typeof (config as { submit?: unknown }).submit === 'function') {
      return original.call(this, config, values, callback);
    }
    const text = typeof config === 'string' ? config : String((config as { text?: unknown }).text ?? '');
    const shape = shapeOf(text);
    const attributes: Attributes = {
      'db.system.name': 'postgresql',
      'db.namespace': this.database,
      'server.address': this.host,
      'server.port': this.port,
      'db.operation.name': shape.operation,
      'db.query.summary': shape.summary,
      'db.query.text': text,
    };
    const span = tracer.startSpan(shape.summary, { kind: SpanKind.CLIENT, attributes });
    const end = (err: unknown) => {
      if (err) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    };

    // Callback forms: query(text, cb), query(text, values, cb), query({ text, callback }).
    // An explicit callback argument wins over config.callback in pg, so passing ours is enough.
    const userCallback = (
      typeof values === 'function' ? values : typeof callback === 'function' ? callback : (config as { callback?: unknown }).callback
    ) as Callback | undefined;
    if (typeof userCallback === 'function') {
      const settled: Callback = (err, res) => {
        end(err);
        userCallback(err, res);
      };
      return original.call(this, config, typeof values === 'function' ? undefined : values, settled);
    }
    // Promise form: the caller gets pg's own promise; ours only observes it.
    let result: unknown;
    try {
      result = original.call(this, config, values);
    } catch (err) {
      end(err);
      throw err;
    }
    (result as Promise<unknown>).then(() => end(undefined), end);
    return result;
  };

  return () => {
    proto.query = original;
  };
}
