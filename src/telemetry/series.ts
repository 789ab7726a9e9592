// Measurements aggregated by the package itself: one object per metric and attribute set, created
// when a pool (or a query shape) is first seen, then updated with plain arithmetic on the hot path
// — no attribute hashing, no allocation. They reach OpenTelemetry at collection time (producer.ts),
// or, without the producer, through the SDK (fallback.ts).
import type { Attributes, Histogram as SdkHistogram } from '@opentelemetry/api';
import type { MetricDef } from './catalogue';

/** A monotonic total since `startTime` (ms since the epoch). */
export class CounterSeries {
  value = 0;
  readonly startTime = Date.now();

  constructor(
    readonly def: MetricDef,
    readonly attributes: Attributes
  ) {}

  add(n = 1): void {
    this.value += n;
  }
}

/** An explicit-bucket histogram with the SDK's bucket rule: value v counts in the first bucket whose bound is >= v. */
export class HistogramSeries {
  readonly boundaries: readonly number[];
  readonly counts: number[];
  sum = 0;
  count = 0;
  min = Infinity;
  max = -Infinity;
  readonly startTime = Date.now();
  /** The SDK instrument to mirror each value into when no producer is attached (the fallback). */
  mirror: SdkHistogram | undefined;

  constructor(
    readonly def: MetricDef,
    readonly attributes: Attributes
  ) {
    this.boundaries = def.buckets ?? [];
    this.counts = new Array<number>(this.boundaries.length + 1).fill(0);
  }

  record(value: number): void {
    // The SDK drops negative and NaN values of a histogram; so do we.
    if (!(value >= 0)) return;
    const b = this.boundaries;
    let i = 0;
    while (i < b.length && b[i]! < value) i++;
    this.counts[i]!++;
    this.count++;
    this.sum += value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
    if (this.mirror) this.mirror.record(value, this.attributes);
  }
}

/** Where collection writes what it reads; implemented by the producer and by the SDK fallback. */
export interface MetricSink {
  /** A gauge or up-down counter read now. */
  observe(def: MetricDef, value: number, attributes: Attributes): void;
  counter(series: CounterSeries): void;
  histogram(series: HistogramSeries): void;
}

/** Anything that contributes to a collection. */
export interface MetricSource {
  collect(sink: MetricSink): void;
}

/** A canonical key of an attribute set, computed once per series (never per measurement). */
export function attributesKey(attributes: Attributes): string {
  return JSON.stringify(Object.keys(attributes).sort().map((k) => [k, attributes[k]]));
}
