// Worker threads and the process's one metrics endpoint. Workers inherit the preload (execArgv,
// NODE_OPTIONS), so each would start its own exporter: a second Prometheus server finds the port
// taken. Instead, in a worker started after the main thread's preload, the preload runs a
// MeterProvider whose readers answer the main thread's collections over a BroadcastChannel; on the
// main thread a MetricProducer on each reader asks the live workers at collection time, briefly,
// and their points are merged into the same metric families with a `thread.id` attribute (the
// semantic-convention attribute; the main thread's own series carry none).
//
// - The main thread publishes what its readers select (temporality, aggregation, cardinality)
//   through worker environment data, so a worker aggregates exactly as its reader expects; the
//   same data tells a worker that the main thread serves its metrics.
// - A worker announces itself once; its exit (the 'exit' event of the Worker object, seen by the
//   thread that created it) drops its series. A worker that does not answer within
//   REPLY_TIMEOUT_MS (its event loop busy) is left out of that collection and not waited for
//   again until it is heard from.
// - Facts about a server (pg_pool.server.*) are the same whichever thread samples them: they are
//   reported once per server, from the thread with the newest sample, without `thread.id`.
// - Nothing here keeps a thread alive: channels and timers are unref'd.
import { BroadcastChannel, getEnvironmentData, isMainThread, setEnvironmentData, threadId, type Worker } from 'node:worker_threads';
import type { Attributes } from '@opentelemetry/api';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  AggregationType,
  InstrumentType,
  MetricReader,
  type AggregationOption,
  type CollectionResult,
  type DataPoint,
  type IMetricReader,
  type MetricCollectOptions,
  type MetricData,
  type MetricProducer,
  type ScopeMetrics,
} from '@opentelemetry/sdk-metrics';
import type { TemporalitySelector } from '../telemetry/producer';
import { reportInternalError } from '../diag';
import { METRICS } from '../telemetry/catalogue';

const CHANNEL = 'pg-pool-otel:worker-metrics:v1';
const REPLIES = `${CHANNEL}:replies`;
/** How long a collection waits for workers to answer. */
export const REPLY_TIMEOUT_MS = 500;
export const THREAD_ATTRIBUTE = 'thread.id';

interface ReaderSpec {
  temporality: Partial<Record<InstrumentType, AggregationTemporality>>;
  aggregation: Partial<Record<InstrumentType, AggregationOption>>;
  cardinality: Partial<Record<InstrumentType, number>>;
}

interface Published {
  readers: ReaderSpec[];
}

type Request = { id: number; reader: number; timeoutMillis?: number };
type Reply =
  | { kind: 'hello'; thread: number }
  | { kind: 'bye'; thread: number }
  | { kind: 'metrics'; thread: number; id: number; scopeMetrics: ScopeMetrics[] };

const INSTRUMENT_TYPES = Object.values(InstrumentType);

function specOf(reader: IMetricReader): ReaderSpec {
  const spec: ReaderSpec = { temporality: {}, aggregation: {}, cardinality: {} };
  for (const type of INSTRUMENT_TYPES) {
    spec.temporality[type] = reader.selectAggregationTemporality(type);
    spec.aggregation[type] = reader.selectAggregation(type);
    spec.cardinality[type] = reader.selectCardinalityLimit(type);
  }
  try {
    structuredClone(spec);
  } catch {
    // A selection that cannot cross threads: workers fall back to the SDK's default aggregation.
    spec.aggregation = {};
  }
  return spec;
}

/** Calls `onExit(threadId)` when a worker this thread creates exits, however it ends. */
function watchChildren(onExit: (thread: number) => void): void {
  process.on('worker', (worker: Worker) => {
    const id = worker.threadId;
    worker.once('exit', () => onExit(id));
  });
}

// ------------------------------------------------------------------------------------------------
// Main thread

/** Builds the main thread's metric readers so that they also serve the worker threads' metrics. */
export class WorkerMetrics {
  private readonly specs: ReaderSpec[] = [];
  private collector: Collector | undefined;

  /** `make` gets the producers to pass as the reader's `metricProducers`. */
  reader<R extends IMetricReader>(make: (metricProducers: MetricProducer[]) => R): R {
    if (!isMainThread) return make([]);
    const collector = (this.collector ??= new Collector());
    const index = this.specs.length;
    const reader = make([{ collect: (options) => collector.collect(index, options) }]);
    mergeFamiliesOnCollect(reader);
    this.specs.push(specOf(reader));
    // Read by every worker started from now on (and by the workers they start).
    setEnvironmentData(CHANNEL, { readers: this.specs } satisfies Published);
    return reader;
  }
}

class Collector {
  private seq = 0;
  private readonly live = new Set<number>();
  private readonly pending = new Map<number, { expected: Set<number>; replies: Map<number, ScopeMetrics[]>; finish(): void }>();
  private readonly requests = new BroadcastChannel(CHANNEL);
  private readonly replies = new BroadcastChannel(REPLIES);

  constructor() {
    this.replies.onmessage = (event) => {
      try {
        this.heard((event as { data: Reply }).data);
      } catch (e) {
        reportInternalError('worker metrics reply', e);
      }
    };
    this.requests.unref();
    this.replies.unref();
    watchChildren((thread) => this.forget(thread));
  }

  collect(reader: number, options?: MetricCollectOptions): Promise<CollectionResult> {
    const empty: CollectionResult = { resourceMetrics: { resource: emptyResource(), scopeMetrics: [] }, errors: [] };
    if (this.live.size === 0) return Promise.resolve(empty);
    const id = ++this.seq;
    const expected = new Set(this.live);
    const replies = new Map<number, ScopeMetrics[]>();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.pending.delete(id);
        // Busy or gone: not waited for again until it is heard from.
        for (const thread of expected) if (!replies.has(thread)) this.live.delete(thread);
        resolve({ ...empty, resourceMetrics: { ...empty.resourceMetrics, scopeMetrics: withThreads(replies) } });
      };
      const timer = setTimeout(finish, Math.min(options?.timeoutMillis ?? REPLY_TIMEOUT_MS, REPLY_TIMEOUT_MS));
      timer.unref();
      this.pending.set(id, { expected, replies, finish });
      this.requests.postMessage({ id, reader, timeoutMillis: options?.timeoutMillis } satisfies Request);
    });
  }

  private heard(reply: Reply): void {
    if (reply.kind === 'bye') return this.forget(reply.thread);
    this.live.add(reply.thread);
    if (reply.kind !== 'metrics') return;
    const p = this.pending.get(reply.id);
    if (!p) return;
    p.replies.set(reply.thread, reply.scopeMetrics);
    if ([...p.expected].every((t) => p.replies.has(t))) p.finish();
  }

  private forget(thread: number): void {
    this.live.delete(thread);
    for (const p of this.pending.values()) {
      if (p.expected.delete(thread) && [...p.expected].every((t) => p.replies.has(t))) p.finish();
    }
  }
}

/** Every worker point gets its thread's id. */
function withThreads(replies: Map<number, ScopeMetrics[]>): ScopeMetrics[] {
  const out: ScopeMetrics[] = [];
  for (const [thread, scopes] of replies) {
    for (const s of scopes) {
      out.push({
        scope: s.scope,
        metrics: s.metrics.map((m) => ({
          ...m,
          dataPoints: (m.dataPoints as DataPoint<unknown>[]).map((p) => ({ ...p, attributes: { ...p.attributes, [THREAD_ATTRIBUTE]: thread } })),
        }) as MetricData),
      });
    }
  }
  return out;
}

/**
 * The reader concatenates what its producers return: the same metric would appear once per thread,
 * and a Prometheus page must have one family per name. Merged after every collection.
 */
function mergeFamiliesOnCollect(reader: IMetricReader): void {
  const collect = reader.collect.bind(reader);
  reader.collect = async (options) => {
    const result = await collect(options);
    try {
      const { resource, scopeMetrics } = result.resourceMetrics;
      return { ...result, resourceMetrics: { resource, scopeMetrics: mergeThreads(scopeMetrics) } };
    } catch (e) {
      reportInternalError('merging worker metrics', e);
      return result;
    }
  };
}

/** One ScopeMetrics per scope and one MetricData per name; server facts once per server. */
export function mergeThreads(scopes: ScopeMetrics[]): ScopeMetrics[] {
  const byScope = new Map<string, ScopeMetrics>();
  let merged = false;
  for (const s of scopes) {
    const key = `${s.scope.name}\0${s.scope.version ?? ''}\0${s.scope.schemaUrl ?? ''}`;
    const into = byScope.get(key);
    if (!into) {
      byScope.set(key, { scope: s.scope, metrics: [...s.metrics] });
      continue;
    }
    merged = true;
    for (const m of s.metrics) {
      const i = into.metrics.findIndex(
        (x) => x.descriptor.name === m.descriptor.name && x.dataPointType === m.dataPointType && x.aggregationTemporality === m.aggregationTemporality
      );
      const same = into.metrics[i];
      if (same) into.metrics[i] = { ...same, dataPoints: [...same.dataPoints, ...m.dataPoints] } as MetricData;
      else into.metrics.push(m);
    }
  }
  if (!merged) return scopes;
  return [...byScope.values()].map((s) => ({ scope: s.scope, metrics: oneSamplerPerServer(s.metrics) }));
}

/** The server's own facts (limits, the last sample): the same whichever thread read them. */
const SERVER_FACTS = new Set<string>(
  Object.values(METRICS)
    .filter((d) => d.name.startsWith('pg_pool.server.') && d.kind === 'gauge')
    .map((d) => d.name)
);
const threadOf = (a: Attributes) => (typeof a[THREAD_ATTRIBUTE] === 'number' ? (a[THREAD_ATTRIBUTE] as number) : threadId);
const serverOf = (a: Attributes) => `${String(a['server.address'])}|${String(a['server.port'])}`;

function oneSamplerPerServer(metrics: MetricData[]): MetricData[] {
  const chosen = new Map<string, { thread: number; at: number }>();
  for (const m of metrics) {
    if (!SERVER_FACTS.has(m.descriptor.name)) continue;
    for (const p of m.dataPoints as DataPoint<unknown>[]) {
      const at = m.descriptor.name === METRICS.serverSampleTimestamp.name ? Number(p.value) : -Infinity;
      const key = serverOf(p.attributes);
      const current = chosen.get(key);
      if (!current || at > current.at) chosen.set(key, { thread: threadOf(p.attributes), at });
    }
  }
  if (chosen.size === 0) return metrics;
  return metrics.map((m) => {
    if (!SERVER_FACTS.has(m.descriptor.name)) return m;
    const points = (m.dataPoints as DataPoint<unknown>[])
      .filter((p) => chosen.get(serverOf(p.attributes))?.thread === threadOf(p.attributes))
      .map((p) => {
        const { [THREAD_ATTRIBUTE]: _thread, ...attributes } = p.attributes;
        return { ...p, attributes };
      });
    return { ...m, dataPoints: points } as MetricData;
  });
}

// ------------------------------------------------------------------------------------------------
// Worker thread

/**
 * In a worker whose main thread serves metrics through WorkerMetrics: readers that answer the main
 * thread's collections (none when it exports no metrics). Undefined otherwise (the main thread, or
 * a main thread without the preload), where the preload runs its own exporters.
 */
export function workerReaders(producer: (temporality: TemporalitySelector) => MetricProducer): IMetricReader[] | undefined {
  if (isMainThread) return undefined;
  const published = getEnvironmentData(CHANNEL) as Published | undefined;
  if (!published || !Array.isArray(published.readers)) return undefined;
  const readers = published.readers.map((spec) => {
    const temporality: TemporalitySelector = (t) => spec.temporality[t] ?? AggregationTemporality.CUMULATIVE;
    return new BridgeReader(spec, temporality, producer(temporality));
  });
  if (readers.length === 0) return readers;
  const requests = new BroadcastChannel(CHANNEL);
  requests.onmessage = (event) => void answer(readers, (event as { data: Request }).data);
  requests.unref();
  reply({ kind: 'hello', thread: threadId });
  // Workers started from this one: the main thread does not see them end.
  watchChildren((thread) => reply({ kind: 'bye', thread }));
  return readers;
}

class BridgeReader extends MetricReader {
  /** `producer` hands this thread's pool and query metrics to the reader, as on the main thread. */
  constructor(spec: ReaderSpec, temporality: TemporalitySelector, producer: MetricProducer) {
    super({
      metricProducers: [producer],
      aggregationTemporalitySelector: temporality,
      aggregationSelector: (t) => spec.aggregation[t] ?? { type: AggregationType.DEFAULT },
      cardinalitySelector: (t) => spec.cardinality[t] ?? 2000,
    });
  }
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

async function answer(readers: BridgeReader[], request: Request): Promise<void> {
  const reader = readers[request.reader];
  if (!reader) return;
  let scopeMetrics: ScopeMetrics[] = [];
  try {
    scopeMetrics = (await reader.collect({ timeoutMillis: request.timeoutMillis })).resourceMetrics.scopeMetrics;
  } catch (e) {
    reportInternalError('worker metrics collection', e);
  }
  reply({ kind: 'metrics', thread: threadId, id: request.id, scopeMetrics });
}

/** Posts on a channel opened for the moment: a worker that kept one open would receive, and
 * deserialize, every other worker's replies. */
function reply(message: Reply): void {
  const channel = new BroadcastChannel(REPLIES);
  try {
    channel.postMessage(message);
  } catch (e) {
    reportInternalError('worker metrics reply', e);
  } finally {
    channel.close();
  }
}
