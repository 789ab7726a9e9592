// The instrumentation set-ups under test. Each worker process calls `setUp` once, before `pg` is
// first required, so that require hooks see the module load exactly as in an application.
//
// Every configuration with spans gets the same span pipeline: one BasicTracerProvider (AlwaysOn
// sampler), a span counter, one BatchSpanProcessor with its defaults, and one OTLPTraceExporter
// (@opentelemetry/exporter-trace-otlp-http, the exporter this package uses) posting to the
// loopback receiver that run.ts started (bench/receiver.ts). Metrics go to a periodic reader with a
// no-op exporter: collection is measured, serialization is not.
import { join } from 'node:path';
import type { DiagLogger, Tracer } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import type { MetricProducer, PushMetricExporter, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Instrumentation } from '@opentelemetry/instrumentation';

export const CONFIGURATIONS = [
  'bare',
  'metrics-floor',
  'floor',
  'incumbent-metrics',
  'incumbent',
  'ours-metrics',
  'ours-metrics-sdk',
  'ours-all',
] as const;
export type ConfigName = (typeof CONFIGURATIONS)[number];

/** Configurations that make spans, compared with the floor as well as with bare pg. */
export const SPAN_CONFIGURATIONS: readonly ConfigName[] = ['floor', 'incumbent', 'ours-all'];

/**
 * The physical limit each configuration is compared with besides bare pg: the span floor for those
 * that make spans, the metrics floor for those that only keep metrics.
 */
export const FLOOR_OF: Partial<Record<ConfigName, 'floor' | 'metrics-floor'>> = {
  incumbent: 'floor',
  'ours-all': 'floor',
  'incumbent-metrics': 'metrics-floor',
  'ours-metrics': 'metrics-floor',
  'ours-metrics-sdk': 'metrics-floor',
};

export const DESCRIPTIONS: Record<ConfigName, string> = {
  bare: 'pg alone',
  'metrics-floor':
    'the floor for metrics: the least code that keeps per-pool histograms of checkout wait, connection use and query ' +
    "duration (bench/metrics-floor.ts: pg-pool's connect and _release and pg's Client.prototype.query wrapped, plain " +
    'arithmetic per measurement, a MetricProducer on the reader); no SDK on the hot path, no leak detection, no spans',
  floor:
    "the SDK's floor for one span per query: a bare wrapper of pg's `Client.prototype.query` (bench/floor.ts) " +
    'that starts one span with 7 attributes (db.system.name, db.namespace, server.address, server.port, ' +
    'db.operation.name, db.query.summary, db.query.text) and ends it when the query settles; no metrics',
  'incumbent-metrics':
    '@opentelemetry/instrumentation-pg with its defaults and a meter provider but no tracer provider: its metrics only',
  incumbent: '@opentelemetry/instrumentation-pg with its defaults: its metrics and spans',
  'ours-metrics': 'pg-pool-otel with its defaults, metrics + leak detection, no tracer provider',
  'ours-metrics-sdk':
    'as ours-metrics, but without the metric producer on the reader: the fallback through SDK instruments (what a programmatic user gets who does not pass metricProducer())',
  'ours-all': 'pg-pool-otel with its defaults, everything on: metrics, leak detection, spans',
};

/** How an `ours-*` configuration's metrics reach the reader. */
export type MetricsPath = 'metric-producer' | 'sdk-instruments' | 'none';

/** This package's build, which the `ours-*` configurations load. */
export function distEntry(repoRoot: string): string {
  return join(repoRoot, 'dist', 'index.js');
}

/** What the worker knows about its spans; run.ts adds what the receiver got. */
export interface SpanCounts {
  /** spans ended in the worker (all sampled: AlwaysOn) */
  made: number;
  /** spans the BatchSpanProcessor said it dropped because its queue was full (it reports late, so this can undercount) */
  queueDrops: number;
  /** other warnings and errors from the SDK (failed exports, timeouts) */
  sdkProblems: number;
}

export interface ActiveConfiguration {
  /** undefined for configurations without spans */
  spanCounts(): SpanCounts | undefined;
  metricsPath: MetricsPath;
  /** Empties the span queue, so that a heap reading does not depend on how full it is. */
  flush(): Promise<void>;
  /** Distinct metric names in one collection (0 when the configuration records none). */
  collectMetricNames(): Promise<string[]>;
  /** Exports what is left and stops; spanCounts() is final after this. */
  shutdown(): Promise<void>;
}

export interface SetUpOptions {
  repoRoot: string;
  /** how often the periodic reader collects and exports */
  metricIntervalMs: number;
  /** the receiver's URL for this job's spans */
  tracesUrl: string;
}

const SUCCESS: ExportResult = { code: 0 };

class NoopMetricExporter implements PushMetricExporter {
  export(_metrics: ResourceMetrics, done: (r: ExportResult) => void): void {
    done(SUCCESS);
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

/** Counts spans as they end, ahead of the batch processor (which may drop them). */
class CountingProcessor implements SpanProcessor {
  made = 0;
  onStart(_span: Span): void {}
  onEnd(): void {
    this.made++;
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

/** Counts what the SDK says about lost spans through the OpenTelemetry diag channel. */
class ExportDiagnostics implements DiagLogger {
  queueDrops = 0;
  problems = 0;
  private said = false;
  private note(message: string): void {
    this.problems++;
    if (!this.said) process.stderr.write(`OpenTelemetry SDK: ${message} (first of its kind; counted in the results)\n`);
    this.said = true;
  }
  error = (message: string, ...args: unknown[]) => this.note([message, ...args.map(String)].join(' '));
  warn = (message: string, ...args: unknown[]) => {
    const dropped = /Dropped (\d+) spans/.exec(message);
    if (dropped) this.queueDrops += Number(dropped[1]);
    else this.note([message, ...args.map(String)].join(' '));
  };
  info = () => {};
  debug = () => {};
  verbose = () => {};
}

interface SpanPipeline {
  tracerProvider: import('@opentelemetry/sdk-trace-base').BasicTracerProvider;
  counts(): SpanCounts;
}

/** The one span pipeline every span configuration uses. */
function spanPipeline(tracesUrl: string): SpanPipeline {
  const api = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
  const { BasicTracerProvider, BatchSpanProcessor } =
    require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  const { OTLPTraceExporter } =
    require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
  const diagnostics = new ExportDiagnostics();
  api.diag.setLogger(diagnostics, api.DiagLogLevel.WARN);
  const counter = new CountingProcessor();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [counter, new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl }))],
  });
  return {
    tracerProvider,
    counts: () => ({ made: counter.made, queueDrops: diagnostics.queueDrops, sdkProblems: diagnostics.problems }),
  };
}

interface OurInstrumentation extends Instrumentation {
  /** The fast metrics path (issue 12); absent from older builds. */
  metricProducer?: (options: { aggregationTemporality: number }) => MetricProducer;
}

/** Installs `name` (the floor also loads pg, to patch its Client). */
export function setUp(name: ConfigName, options: SetUpOptions): ActiveConfiguration {
  if (name === 'bare') {
    return {
      spanCounts: () => undefined,
      metricsPath: 'none',
      flush: async () => {},
      collectMetricNames: async () => [],
      shutdown: async () => {},
    };
  }
  const spans = SPAN_CONFIGURATIONS.includes(name) ? spanPipeline(options.tracesUrl) : undefined;
  if (name === 'floor') return setUpFloor(spans!);
  if (name === 'metrics-floor') return setUpMetricsFloor(options);

  const { AggregationTemporality } = require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics');
  const { registerInstrumentations } =
    require('@opentelemetry/instrumentation') as typeof import('@opentelemetry/instrumentation');

  // The instrumentation comes first: our fast metrics path hands its producer to the reader.
  let instrumentation: Instrumentation;
  let producer: MetricProducer | undefined;
  if (name === 'incumbent' || name === 'incumbent-metrics') {
    const { PgInstrumentation } =
      require('@opentelemetry/instrumentation-pg') as typeof import('@opentelemetry/instrumentation-pg');
    instrumentation = new PgInstrumentation();
  } else {
    // Defaults throughout: the benchmark measures what a user gets without tuning.
    const ours = require(distEntry(options.repoRoot)) as {
      PgPoolInstrumentation: new (config?: Record<string, unknown>) => OurInstrumentation;
    };
    const inst = new ours.PgPoolInstrumentation({ logLevel: 'warn' });
    if (typeof inst.metricProducer === 'function' && name !== 'ours-metrics-sdk') {
      producer = inst.metricProducer({ aggregationTemporality: AggregationTemporality.CUMULATIVE });
    }
    instrumentation = inst;
  }
  const { reader, meterProvider } = collectingReader(options, producer);
  const unregister = registerInstrumentations({
    instrumentations: [instrumentation],
    meterProvider,
    ...(spans ? { tracerProvider: spans.tracerProvider } : {}),
  });

  return {
    spanCounts: () => spans?.counts(),
    metricsPath: name.startsWith('incumbent') ? 'sdk-instruments' : producer ? 'metric-producer' : 'sdk-instruments',
    async flush() {
      await spans?.tracerProvider.forceFlush();
    },
    collectMetricNames: () => metricNames(reader),
    async shutdown() {
      await spans?.tracerProvider.forceFlush();
      unregister();
      await Promise.all([meterProvider.shutdown(), spans?.tracerProvider.shutdown()]);
    },
  };
}

/** A meter provider whose periodic reader collects (from `producer`, if given) and exports nowhere. */
export function collectingReader(options: Pick<SetUpOptions, 'metricIntervalMs'>, producer: MetricProducer | undefined) {
  const { MeterProvider, PeriodicExportingMetricReader } =
    require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics');
  const reader = new PeriodicExportingMetricReader({
    exporter: new NoopMetricExporter(),
    exportIntervalMillis: options.metricIntervalMs,
    exportTimeoutMillis: Math.min(options.metricIntervalMs, 30_000),
    ...(producer ? { metricProducers: [producer] } : {}),
  });
  return { reader, meterProvider: new MeterProvider({ readers: [reader] }) };
}

/** Distinct metric names with data points in one collection. */
async function metricNames(reader: import('@opentelemetry/sdk-metrics').MetricReader): Promise<string[]> {
  const { resourceMetrics } = await reader.collect();
  const names = new Set<string>();
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const m of scope.metrics) if (m.dataPoints.length > 0) names.add(m.descriptor.name);
  }
  return [...names].sort();
}

function setUpMetricsFloor(options: SetUpOptions): ActiveConfiguration {
  const { installMetricsFloor } = require('./metrics-floor') as typeof import('./metrics-floor');
  const { producer, uninstall } = installMetricsFloor(require('pg') as typeof import('pg'));
  const { reader, meterProvider } = collectingReader(options, producer);
  return {
    spanCounts: () => undefined,
    metricsPath: 'metric-producer',
    flush: async () => {},
    collectMetricNames: () => metricNames(reader),
    async shutdown() {
      uninstall();
      await meterProvider.shutdown();
    },
  };
}

function setUpFloor(spans: SpanPipeline): ActiveConfiguration {
  const { installFloor } = require('./floor') as typeof import('./floor');
  const tracer: Tracer = spans.tracerProvider.getTracer('bench-floor');
  const uninstall = installFloor(require('pg') as typeof import('pg'), tracer);
  return {
    spanCounts: () => spans.counts(),
    metricsPath: 'none',
    flush: () => spans.tracerProvider.forceFlush(),
    collectMetricNames: async () => [],
    async shutdown() {
      await spans.tracerProvider.forceFlush();
      uninstall();
      await spans.tracerProvider.shutdown();
    },
  };
}
