// The fast path: a sdk-metrics MetricProducer that hands a reader this package's aggregated series
// at collection time. Readers do not convert a producer's temporality, so each producer keeps the
// previous totals it reported and computes deltas itself when its reader wants them.
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { millisToHrTime } from '@opentelemetry/core';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  InstrumentType,
  type CollectionResult,
  type DataPoint,
  type Histogram,
  type MetricCollectOptions,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import { VERSION } from '../version';
import type { MetricDef } from './catalogue';
import type { MetricStore } from './metric-store';
import type { CounterSeries, HistogramSeries, MetricSink } from './series';

export type TemporalitySelector = (instrumentType: InstrumentType) => AggregationTemporality;

export interface MetricProducerOptions {
  /**
   * The temporality the reader exports with: a value, or the exporter's own selector
   * (`exporter.selectAggregationTemporality.bind(exporter)`). Default cumulative.
   */
  aggregationTemporality?: AggregationTemporality | TemporalitySelector;
}

export const SCOPE = { name: 'pg-pool-otel', version: VERSION };

const INSTRUMENT_TYPE = {
  counter: InstrumentType.COUNTER,
  histogram: InstrumentType.HISTOGRAM,
  updowncounter: InstrumentType.OBSERVABLE_UP_DOWN_COUNTER,
  gauge: InstrumentType.OBSERVABLE_GAUGE,
} as const;

interface Reported {
  at: HrTime;
  value: number;
  counts?: number[];
  sum?: number;
  count?: number;
}

export class PgPoolMetricProducer implements MetricProducer {
  private readonly select: TemporalitySelector;
  /** What the last collection reported per series, for delta temporality. */
  private readonly reported = new WeakMap<CounterSeries | HistogramSeries, Reported>();

  constructor(
    private readonly store: MetricStore,
    options: MetricProducerOptions = {}
  ) {
    const t = options.aggregationTemporality;
    this.select = typeof t === 'function' ? t : () => t ?? AggregationTemporality.CUMULATIVE;
  }

  async collect(_options?: MetricCollectOptions): Promise<CollectionResult> {
    const now = millisToHrTime(Date.now());
    const metrics = new Map<string, MetricData & { dataPoints: DataPoint<unknown>[] }>();
    const metricOf = (def: MetricDef, temporality: AggregationTemporality) => {
      let m = metrics.get(def.name);
      if (!m) {
        const descriptor = { name: def.name, description: def.description, unit: def.unit, valueType: ValueType.DOUBLE };
        const dataPoints: DataPoint<never>[] = [];
        m =
          def.kind === 'histogram'
            ? { descriptor, aggregationTemporality: temporality, dataPointType: DataPointType.HISTOGRAM, dataPoints }
            : def.kind === 'gauge'
              ? { descriptor, aggregationTemporality: temporality, dataPointType: DataPointType.GAUGE, dataPoints }
              : { descriptor, aggregationTemporality: temporality, dataPointType: DataPointType.SUM, isMonotonic: def.kind === 'counter', dataPoints };
        metrics.set(def.name, m);
      }
      return m.dataPoints;
    };
    const delta = (def: MetricDef) => this.select(INSTRUMENT_TYPE[def.kind]) === AggregationTemporality.DELTA;

    const sink: MetricSink = {
      observe: (def, value, attributes) => {
        // Values read now are cumulative by nature (the SDK does the same for async up-down counters).
        metricOf(def, AggregationTemporality.CUMULATIVE).push(point(now, now, attributes, value));
      },
      counter: (s) => {
        if (!delta(s.def)) {
          metricOf(s.def, AggregationTemporality.CUMULATIVE).push(point(millisToHrTime(s.startTime), now, s.attributes, s.value));
          return;
        }
        const last = this.reported.get(s);
        this.reported.set(s, { at: now, value: s.value });
        metricOf(s.def, AggregationTemporality.DELTA).push(
          point(last?.at ?? millisToHrTime(s.startTime), now, s.attributes, s.value - (last?.value ?? 0))
        );
      },
      histogram: (s) => {
        if (!delta(s.def)) {
          const value: Histogram = {
            buckets: { boundaries: [...s.boundaries], counts: [...s.counts] },
            sum: s.sum,
            count: s.count,
            ...(s.count > 0 ? { min: s.min, max: s.max } : {}),
          };
          metricOf(s.def, AggregationTemporality.CUMULATIVE).push(point(millisToHrTime(s.startTime), now, s.attributes, value));
          return;
        }
        const last = this.reported.get(s);
        this.reported.set(s, { at: now, value: 0, counts: [...s.counts], sum: s.sum, count: s.count });
        // min and max of an interval cannot be told from running totals: left out of delta points.
        const value: Histogram = {
          buckets: { boundaries: [...s.boundaries], counts: s.counts.map((c, i) => c - (last?.counts?.[i] ?? 0)) },
          sum: s.sum - (last?.sum ?? 0),
          count: s.count - (last?.count ?? 0),
        };
        metricOf(s.def, AggregationTemporality.DELTA).push(point(last?.at ?? millisToHrTime(s.startTime), now, s.attributes, value));
      },
    };
    this.store.collect(sink);
    return {
      resourceMetrics: { resource: emptyResource(), scopeMetrics: [{ scope: SCOPE, metrics: [...metrics.values()] as MetricData[] }] },
      errors: [],
    };
  }
}

function point<T>(startTime: HrTime, endTime: HrTime, attributes: Attributes, value: T): DataPoint<T> {
  return { startTime, endTime, attributes, value };
}
