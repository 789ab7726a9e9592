// Every aggregated series of one instrumentation, one per (metric, attribute set), so a pool that
// takes an ended pool's name continues its series exactly as an SDK instrument would. Gauges are
// not stored: their sources read them from the pools at collection time.
import type { Attributes, Histogram as SdkHistogram } from '@opentelemetry/api';
import { reportInternalError } from '../diag';
import type { MetricDef } from './catalogue';
import { attributesKey, CounterSeries, HistogramSeries, type MetricSink, type MetricSource } from './series';

export class MetricStore {
  private readonly counters = new Map<string, CounterSeries>();
  private readonly histograms = new Map<string, HistogramSeries>();
  private readonly sources = new Map<string, MetricSource>();
  /** SDK histograms to mirror into, by metric name, while no producer is attached. */
  private mirrors: Map<string, SdkHistogram> | undefined;

  counter(def: MetricDef, attributes: Attributes): CounterSeries {
    const key = `${def.name}\u0000${attributesKey(attributes)}`;
    let s = this.counters.get(key);
    if (!s) this.counters.set(key, (s = new CounterSeries(def, Object.freeze({ ...attributes }))));
    return s;
  }

  histogram(def: MetricDef, attributes: Attributes): HistogramSeries {
    const key = `${def.name}\u0000${attributesKey(attributes)}`;
    let s = this.histograms.get(key);
    if (!s) {
      s = new HistogramSeries(def, Object.freeze({ ...attributes }));
      s.mirror = this.mirrors?.get(def.name);
      this.histograms.set(key, s);
    }
    return s;
  }

  /** Registers a gauge source under a name; registering the same name again replaces it. */
  addSource(name: string, source: MetricSource): void {
    this.sources.set(name, source);
  }

  /** Switches every histogram, present and future, to mirror into these SDK instruments (or none). */
  mirrorHistograms(mirrors: Map<string, SdkHistogram> | undefined): void {
    this.mirrors = mirrors;
    for (const s of this.histograms.values()) s.mirror = mirrors?.get(s.def.name);
  }

  /** Everything, once: each source is guarded on its own, so one fault loses only its own metrics. */
  collect(sink: MetricSink): void {
    for (const [name, source] of this.sources) {
      try {
        source.collect(sink);
      } catch (e) {
        reportInternalError(`${name} collection`, e);
      }
    }
    for (const s of this.counters.values()) sink.counter(s);
    for (const s of this.histograms.values()) sink.histogram(s);
  }
}
