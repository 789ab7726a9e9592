// Worker threads' metrics on the main thread's readers: merged into the same families with
// thread.id, aggregated as each reader expects (cumulative or delta), a busy worker left out of a
// collection rather than holding it up, an exited worker's series gone, and facts about a server
// reported once whichever thread sampled them.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { hrTime } from '@opentelemetry/core';
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  MetricReader,
  type MetricData,
  type MetricProducer,
  type ScopeMetrics,
} from '@opentelemetry/sdk-metrics';
import { REPLY_TIMEOUT_MS, THREAD_ATTRIBUTE, WorkerMetrics, mergeThreads } from '../src/preload/worker-bridge';
import { METRICS } from '../src/telemetry/catalogue';
import { eventually } from './support/telemetry';

class TestReader extends MetricReader {
  constructor(temporality: AggregationTemporality, metricProducers: MetricProducer[]) {
    super({ aggregationTemporalitySelector: () => temporality, metricProducers });
  }
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

const threads = new WorkerMetrics();
const cumulative = threads.reader((producers) => new TestReader(AggregationTemporality.CUMULATIVE, producers));
const delta = threads.reader((producers) => new TestReader(AggregationTemporality.DELTA, producers));
const provider = new MeterProvider({ readers: [cumulative, delta] });
provider.getMeter('worker-test').createCounter('jobs').add(1, { kind: 'test' });
after(() => provider.shutdown());

/** The `jobs` points by thread (0 for the main thread). */
async function jobs(reader: MetricReader): Promise<Map<number, number>> {
  const { resourceMetrics } = await reader.collect();
  const families = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).filter((m) => m.descriptor.name === 'jobs');
  assert.ok(families.length <= 1, 'one family per name');
  const out = new Map<number, number>();
  for (const p of families[0]?.dataPoints ?? []) out.set((p.attributes[THREAD_ATTRIBUTE] as number | undefined) ?? 0, p.value as number);
  return out;
}

function startWorker() {
  const worker = new Worker(join(__dirname, 'fixtures', 'worker-metrics', 'worker.cjs'));
  const replies: string[] = [];
  worker.on('message', (m: string) => replies.push(m));
  const next = async () => {
    await eventually(() => replies.length > 0, 10_000, 'a reply from the worker');
    return replies.shift();
  };
  return {
    worker,
    next,
    send: (m: unknown) => worker.postMessage(m),
    exited: new Promise<number>((r) => worker.once('exit', r)),
  };
}

async function exercise(w: ReturnType<typeof startWorker>): Promise<void> {
  assert.equal(await w.next(), 'ready');
  w.send({ add: 5 });
  await w.next();
  const id = w.worker.threadId;
  await eventually(async () => (await jobs(cumulative)).get(id) === 5, 5000, "the worker's count");
  assert.equal((await jobs(cumulative)).get(0), 1, "the main thread's own series, without thread.id");
  assert.equal((await jobs(delta)).get(id), 5, 'delta: everything so far');
  w.send({ add: 2 });
  await w.next();
  assert.equal((await jobs(delta)).get(id), 2, 'delta: only what came since');
  assert.equal((await jobs(cumulative)).get(id), 7, 'cumulative: the running total');

  // Busy longer than the collection waits: left out of that collection, back once it answers.
  w.send({ block: REPLY_TIMEOUT_MS * 3 });
  assert.equal(await w.next(), 'blocking');
  const busy = await jobs(cumulative);
  assert.equal(busy.has(id), false, 'left out while busy');
  assert.equal(busy.get(0), 1, 'the rest is still collected');
  await w.next();
  await eventually(async () => (await jobs(cumulative)).get(id) === 7, 5000, 'the worker back');

  w.send('stop');
  await w.exited;
  assert.equal((await jobs(cumulative)).has(id), false, "an exited worker's series go with it");
}

describe('worker threads on the main thread readers', () => {
  it("a worker's points join the same family with thread.id, in each reader's temporality", async () => {
    const w = startWorker();
    try {
      await exercise(w);
    } finally {
      await w.worker.terminate();
    }
  });

  it('facts about a server come once, from the thread with the newest sample, without thread.id', () => {
    const server = { 'server.address': 'db', 'server.port': 5432 };
    const gauge = (name: string, points: [attributes: Record<string, unknown>, value: number][]): MetricData => ({
      descriptor: { name, description: '', unit: '', valueType: 1 },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.GAUGE,
      dataPoints: points.map(([attributes, value]) => ({ attributes: attributes as never, value, startTime: hrTime(), endTime: hrTime() })),
    });
    const scope = { name: 'pg-pool-otel', version: '1' };
    const fromMain: ScopeMetrics = {
      scope,
      metrics: [gauge(METRICS.serverMaxConnections.name, [[server, 100]]), gauge(METRICS.serverSampleTimestamp.name, [[server, 1000]])],
    };
    const worker = { ...server, [THREAD_ATTRIBUTE]: 7 };
    const fromWorker: ScopeMetrics = {
      scope,
      metrics: [gauge(METRICS.serverMaxConnections.name, [[worker, 100]]), gauge(METRICS.serverSampleTimestamp.name, [[worker, 2000]]), gauge('db.client.connection.count', [[worker, 3]])],
    };
    const [merged, ...rest] = mergeThreads([fromMain, fromWorker]);
    assert.equal(rest.length, 0, 'one scope');
    const points = (name: string) => merged!.metrics.find((m) => m.descriptor.name === name)!.dataPoints.map((p) => [p.attributes, p.value]);
    assert.deepEqual(points(METRICS.serverSampleTimestamp.name), [[server, 2000]], "the worker's newer sample, once");
    assert.deepEqual(points(METRICS.serverMaxConnections.name), [[server, 100]]);
    assert.deepEqual(points('db.client.connection.count'), [[worker, 3]], 'pool series keep thread.id');
  });
});
