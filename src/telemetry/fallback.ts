// Without the producer: ordinary SDK instruments on the instrumentation's meter. Gauges and
// counters are observed from the store in one batch callback (so counting stays a plain field
// increment); histograms have no asynchronous form in the API, so each value is also passed to an
// SDK histogram's record(), which hashes the attributes on every call: the cost the producer avoids.
import type { Histogram, Meter, Observable, ObservableCounter, ObservableGauge, ObservableUpDownCounter } from '@opentelemetry/api';
import { reportInternalError } from '../diag';
import { METRICS, type MetricDef } from './catalogue';
import type { MetricStore } from './metric-store';

export interface SdkInstruments {
  /** Removes the collection callback and stops mirroring histograms. */
  detach(): void;
}

export function attachSdkInstruments(meter: Meter, store: MetricStore): SdkInstruments {
  const observables = new Map<string, ObservableGauge | ObservableUpDownCounter | ObservableCounter>();
  const histograms = new Map<string, Histogram>();
  for (const d of Object.values(METRICS) as MetricDef[]) {
    const options = { unit: d.unit, description: d.description };
    if (d.kind === 'histogram') {
      histograms.set(d.name, meter.createHistogram(d.name, { ...options, advice: { explicitBucketBoundaries: [...(d.buckets ?? [])] } }));
    } else if (d.kind === 'gauge') observables.set(d.name, meter.createObservableGauge(d.name, options));
    else if (d.kind === 'updowncounter') observables.set(d.name, meter.createObservableUpDownCounter(d.name, options));
    else observables.set(d.name, meter.createObservableCounter(d.name, options));
  }
  const list: Observable[] = [...observables.values()];
  const callback = (result: import('@opentelemetry/api').BatchObservableResult) => {
    try {
      store.collect({
        observe: (d, value, attributes) => result.observe(observables.get(d.name)!, value, attributes),
        counter: (s) => result.observe(observables.get(s.def.name)!, s.value, s.attributes),
        histogram: () => {},
      });
    } catch (e) {
      reportInternalError('metric collection', e);
    }
  };
  meter.addBatchObservableCallback(callback, list);
  store.mirrorHistograms(histograms);
  return {
    detach() {
      meter.removeBatchObservableCallback(callback, list);
      store.mirrorHistograms(undefined);
    },
  };
}
