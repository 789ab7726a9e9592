// The fast path: the package's own aggregation reaches readers through its MetricProducer. The
// values are those of the SDK fallback (test/metric-sdk-fallback.test.ts runs the same script), and
// a delta reader gets deltas while a cumulative reader on the same instrumentation gets totals.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AggregationTemporality, DataPointType, MeterProvider, MetricReader, type Histogram, type MetricData } from '@opentelemetry/sdk-metrics';
import { instrument } from './support/telemetry';
import { usePostgres } from './support/server';
import { scriptedPoolWorkload } from './support/metric-scenario';
import { setPoolName } from '../src/index';

const t = instrument({ leakThresholdMs: 0, configAdvice: false, serverSampleIntervalMs: 0 });
const server = usePostgres();
after(() => t.shutdown());

class Reader extends MetricReader {
  constructor(temporality: AggregationTemporality) {
    super({ aggregationTemporalitySelector: () => temporality, metricProducers: [t.instrumentation.metricProducer({ aggregationTemporality: temporality })] });
  }
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

async function read(reader: MetricReader): Promise<MetricData[]> {
  const { resourceMetrics, errors } = await reader.collect();
  assert.deepEqual(errors, []);
  return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
}

function waitCount(metrics: MetricData[], pool: string): { count: number; temporality: AggregationTemporality; start: number } | undefined {
  const m = metrics.find((x) => x.descriptor.name === 'db.client.connection.wait_time');
  assert.equal(m?.dataPointType, DataPointType.HISTOGRAM);
  const p = m!.dataPoints.find((d) => d.attributes['db.client.connection.pool.name'] === pool);
  if (!p) return undefined;
  return { count: (p.value as Histogram).count, temporality: m!.aggregationTemporality, start: p.startTime[0] * 1e3 + p.startTime[1] / 1e6 };
}

describe('metrics through the producer', () => {
  it('exports the scripted workload with the expected values', async () => {
    await scriptedPoolWorkload(t, server.current.url, 'scripted-producer');
  });

  it('gives a delta reader the change since its last collection, and a cumulative reader the totals', async () => {
    const delta = new Reader(AggregationTemporality.DELTA);
    const cumulative = new Reader(AggregationTemporality.CUMULATIVE);
    const provider = new MeterProvider({ readers: [delta, cumulative] });
    const pool = new t.pg.Pool({ connectionString: server.current.url, max: 2 });
    setPoolName(pool, 'temporality');
    try {
      for (let i = 0; i < 5; i++) await pool.query('SELECT 1');
      const d1 = waitCount(await read(delta), 'temporality');
      const c1 = waitCount(await read(cumulative), 'temporality');
      for (let i = 0; i < 3; i++) await pool.query('SELECT 1');
      const d2 = waitCount(await read(delta), 'temporality');
      const c2 = waitCount(await read(cumulative), 'temporality');
      const d3 = waitCount(await read(delta), 'temporality');
      assert.deepEqual([d1?.count, d2?.count, d3?.count], [5, 3, 0]);
      assert.deepEqual([c1?.count, c2?.count], [5, 8]);
      assert.equal(d2?.temporality, AggregationTemporality.DELTA);
      assert.equal(c2?.temporality, AggregationTemporality.CUMULATIVE);
      assert.ok(d2!.start > d1!.start, 'a delta point starts where the previous one ended');
      assert.equal(c2!.start, c1!.start, 'a cumulative point keeps its start');
      // Gauges read now are the same for both.
      const used = async (r: MetricReader) =>
        (await read(r)).find((m) => m.descriptor.name === 'db.client.connection.count')!.dataPoints.find(
          (p) => p.attributes['db.client.connection.pool.name'] === 'temporality' && p.attributes['db.client.connection.state'] === 'idle'
        )?.value;
      assert.equal(await used(delta), 1);
      assert.equal(await used(cumulative), 1);
    } finally {
      await pool.end();
      await provider.shutdown();
    }
  });

  it('records nothing through SDK instruments when a producer is attached', async () => {
    // The harness passed the producer to its reader: the meter of the instrumentation has no
    // instruments of its own, so each series is exported once.
    const metrics = await t.collect();
    const names = metrics.map((m) => m.descriptor.name);
    assert.equal(new Set(names).size, names.length, `a metric exported twice: ${names.join(', ')}`);
  });
});
