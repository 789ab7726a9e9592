// Test harness: the instrumentation wired to an in-memory metric reader and span exporter, and pg
// loaded after it (so the hooks are in place). Values are read back exactly as the SDK exports them.
import { context, trace, metrics } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Attributes } from '@opentelemetry/api';
import { PgPoolInstrumentation } from '../../src/instrumentation';
import type { PgPoolInstrumentationConfig } from '../../src/settings';

class TestReader extends MetricReader {
  constructor(metricProducers: MetricProducer[] = []) {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE, metricProducers });
  }
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

export type Pg = typeof import('pg');

export interface Harness {
  instrumentation: PgPoolInstrumentation;
  pg: Pg;
  spans: InMemorySpanExporter;
  tracer: ReturnType<typeof trace.getTracer>;
  /** All metrics as exported now. */
  collect(): Promise<MetricData[]>;
  /** Sum/gauge value of the single point matching `match` (undefined when absent). */
  value(name: string, match?: Attributes): Promise<number | undefined>;
  /** Histogram point matching `match`. */
  histogram(name: string, match?: Attributes): Promise<Histogram | undefined>;
  /** Every point of a metric. */
  points(name: string): Promise<DataPoint<unknown>[]>;
  shutdown(): Promise<void>;
}

function matches(attrs: Attributes, match: Attributes | undefined): boolean {
  if (!match) return true;
  return Object.entries(match).every(([k, v]) => attrs[k] === v);
}

export interface HarnessOptions {
  /**
   * How metrics reach the reader: through the package's producer (the fast path, the default) or
   * through ordinary SDK instruments (the fallback when no producer is passed to the reader).
   */
  metrics?: 'producer' | 'sdk';
}

export function instrument(config: PgPoolInstrumentationConfig = {}, options: HarnessOptions = {}): Harness {
  const instrumentation = new PgPoolInstrumentation(config);
  const reader = new TestReader(options.metrics === 'sdk' ? [] : [instrumentation.metricProducer()]);
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(tracerProvider);
  metrics.setGlobalMeterProvider(meterProvider);
  registerInstrumentations({ instrumentations: [instrumentation], meterProvider, tracerProvider });
  // Loaded only now, so that require-in-the-middle patches it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pg = require('pg') as Pg;

  const collect = async (): Promise<MetricData[]> => {
    const { resourceMetrics, errors } = await reader.collect();
    if (errors.length) throw errors[0];
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
  };
  const points = async (name: string) => {
    const m = (await collect()).find((x) => x.descriptor.name === name);
    return (m?.dataPoints ?? []) as DataPoint<unknown>[];
  };
  const single = async (name: string, match?: Attributes) => {
    const found = (await points(name)).filter((p) => matches(p.attributes, match));
    if (found.length > 1) throw new Error(`${found.length} points of ${name} match ${JSON.stringify(match)}`);
    return found[0];
  };
  return {
    instrumentation,
    pg,
    spans,
    tracer: tracerProvider.getTracer('test'),
    collect,
    points,
    async value(name, match) {
      const p = await single(name, match);
      return p === undefined ? undefined : (p.value as number);
    },
    async histogram(name, match) {
      const m = (await collect()).find((x) => x.descriptor.name === name);
      if (m && m.dataPointType !== DataPointType.HISTOGRAM) throw new Error(`${name} is not a histogram`);
      const p = await single(name, match);
      return p?.value as Histogram | undefined;
    },
    async shutdown() {
      instrumentation.disable();
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    },
  };
}

/** Polls `check` until it returns true or `ms` pass. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 3000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
