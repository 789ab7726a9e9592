// The instrumentation set-ups under test. Each worker process calls `setUp` once, before `pg` is
// first required, so that require hooks see the module load exactly as in an application.
import { join } from 'node:path';
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { PushMetricExporter, ResourceMetrics } from '@opentelemetry/sdk-metrics';

export const CONFIGURATIONS = ['bare', 'incumbent', 'ours-metrics', 'ours-all'] as const;
export type ConfigName = (typeof CONFIGURATIONS)[number];

export const DESCRIPTIONS: Record<ConfigName, string> = {
  bare: 'pg alone',
  incumbent: '@opentelemetry/instrumentation-pg, metrics + spans (batch processor, no-op exporter)',
  'ours-metrics': 'pg-pool-otel, metrics + leak detection, no tracer provider',
  'ours-all': 'pg-pool-otel, everything on, spans to the same batch processor + no-op exporter',
};

/** This package's build, which the `ours-*` configurations load. */
export function distEntry(repoRoot: string): string {
  return join(repoRoot, 'dist', 'index.js');
}

export interface ActiveConfiguration {
  /** Spans that reached the exporter so far. */
  spansExported(): number;
  /** Empties the span queue, so that a heap reading does not depend on how full it is. */
  flush(): Promise<void>;
  /** Distinct metric names in one collection (0 when the configuration records none). */
  collectMetricNames(): Promise<string[]>;
  shutdown(): Promise<void>;
}

const SUCCESS: ExportResult = { code: 0 };

class NoopSpanExporter implements SpanExporter {
  count = 0;
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.count += spans.length;
    done(SUCCESS);
  }
  async shutdown(): Promise<void> {}
}

class NoopMetricExporter implements PushMetricExporter {
  export(_metrics: ResourceMetrics, done: (r: ExportResult) => void): void {
    done(SUCCESS);
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

/** Installs `name`; `metricIntervalMs` is how often the periodic reader collects and exports. */
export function setUp(name: ConfigName, metricIntervalMs: number, repoRoot: string): ActiveConfiguration {
  if (name === 'bare') {
    return { spansExported: () => 0, flush: async () => {}, collectMetricNames: async () => [], shutdown: async () => {} };
  }
  const { MeterProvider, PeriodicExportingMetricReader } =
    require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics');
  const { BasicTracerProvider, BatchSpanProcessor } =
    require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  const { registerInstrumentations } =
    require('@opentelemetry/instrumentation') as typeof import('@opentelemetry/instrumentation');

  const reader = new PeriodicExportingMetricReader({
    exporter: new NoopMetricExporter(),
    exportIntervalMillis: metricIntervalMs,
    exportTimeoutMillis: Math.min(metricIntervalMs, 30_000),
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spanExporter = new NoopSpanExporter();
  const withSpans = name === 'incumbent' || name === 'ours-all';
  const tracerProvider = withSpans
    ? new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spanExporter)] })
    : undefined;

  let instrumentation: import('@opentelemetry/instrumentation').Instrumentation;
  if (name === 'incumbent') {
    const { PgInstrumentation } =
      require('@opentelemetry/instrumentation-pg') as typeof import('@opentelemetry/instrumentation-pg');
    instrumentation = new PgInstrumentation();
  } else {
    // Defaults throughout: the benchmark measures what a user gets without tuning.
    const ours = require(distEntry(repoRoot)) as {
      PgPoolInstrumentation: new (config?: Record<string, unknown>) => import('@opentelemetry/instrumentation').Instrumentation;
    };
    instrumentation = new ours.PgPoolInstrumentation({ logLevel: 'warn' });
  }
  const unregister = registerInstrumentations({
    instrumentations: [instrumentation],
    meterProvider,
    ...(tracerProvider ? { tracerProvider } : {}),
  });

  return {
    spansExported: () => spanExporter.count,
    async flush() {
      await tracerProvider?.forceFlush();
    },
    async collectMetricNames() {
      const { resourceMetrics } = await reader.collect();
      const names = new Set<string>();
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const m of scope.metrics) if (m.dataPoints.length > 0) names.add(m.descriptor.name);
      }
      return [...names].sort();
    },
    async shutdown() {
      await tracerProvider?.forceFlush();
      unregister();
      await Promise.all([meterProvider.shutdown(), tracerProvider?.shutdown()]);
    },
  };
}
