// The preload's own OpenTelemetry SDK: a MeterProvider with a Prometheus endpoint (or OTLP,
// console, none), an optional TracerProvider, configured by the standard OTEL_* variables.
// Apps that already run an SDK use PgPoolInstrumentation directly instead.
import { context, metrics, trace } from '@opentelemetry/api';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { defaultResource, detectResources, envDetector, type Resource } from '@opentelemetry/resources';
import {
  ConsoleMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  AggregationTemporality,
  type IMetricReader,
  type MetricProducer,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics';
// Types only: the trace SDK, the context manager and the Prometheus exporter are loaded when the
// settings choose them (start-up time and memory of serverless functions and short jobs).
import type { BasicTracerProvider, Sampler, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { describeRejected, reportSettingProblem } from '../settings';
import { log } from '../diag';
import { otlpMetricExporter, otlpSpanExporter } from './exporters';
import { PgPoolInstrumentation } from '../instrumentation';
import type { TemporalitySelector } from '../telemetry/producer';
import { WorkerMetrics, workerReaders } from './worker-bridge';

/* eslint-disable @typescript-eslint/no-require-imports */
const traceSdk = () => require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
/* eslint-enable @typescript-eslint/no-require-imports */

export interface RunningTelemetry {
  instrumentation: PgPoolInstrumentation;
  meterProvider: MeterProvider | undefined;
  tracerProvider: BasicTracerProvider | undefined;
  /** Flushes what is buffered and stops exporters; safe to call more than once. */
  shutdown(): Promise<void>;
}

const METRICS_EXPORTERS = ['prometheus', 'otlp', 'console', 'none'] as const;
const TRACES_EXPORTERS = ['otlp', 'console', 'none'] as const;

function exporterList<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[], fallback: T): T[] {
  const raw = env[name];
  if (raw === undefined) return [fallback];
  const items = raw.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const bad = items.filter((i) => !(allowed as readonly string[]).includes(i));
  if (items.length === 0 || bad.length > 0) {
    reportSettingProblem(describeRejected(name, raw, `a comma-separated list of ${allowed.join(', ')}`, fallback));
    return [fallback];
  }
  return [...new Set(items)] as T[];
}

function integerVar(env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback: number, what: string): number {
  const raw = env[name];
  if (raw === undefined) return fallback;
  const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (Number.isSafeInteger(n) && n >= min && n <= max) return n;
  reportSettingProblem(describeRejected(name, raw, `${what} from ${min} to ${max}`, fallback));
  return fallback;
}

function isTrue(env: NodeJS.ProcessEnv, name: string): boolean {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return false;
  const v = raw.trim().toLowerCase();
  if (v === 'true') return true;
  if (v !== 'false') reportSettingProblem(describeRejected(name, raw, 'true or false', false));
  return false;
}

function prometheusReader(env: NodeJS.ProcessEnv, metricProducers: MetricProducer[]): PrometheusExporter {
  const port = integerVar(env, 'OTEL_EXPORTER_PROMETHEUS_PORT', 0, 65535, 9464, 'a TCP port number');
  const hostRaw = env.OTEL_EXPORTER_PROMETHEUS_HOST?.trim();
  const host = hostRaw ? hostRaw : undefined;
  const where = `${host ?? '0.0.0.0 (all interfaces)'}:${port}`;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { PrometheusExporter: Exporter } = require('@opentelemetry/exporter-prometheus') as typeof import('@opentelemetry/exporter-prometheus');
  const exporter = new Exporter({ host, port, metricProducers }, (err?: unknown) => {
    if (!err) {
      log().debug(`serving Prometheus metrics on http://${where}/metrics`);
      return;
    }
    const code = (err as { code?: unknown }).code;
    const why = code === 'EADDRINUSE' ? 'the port is already in use' : String((err as Error).message ?? err);
    log().warn(
      `cannot serve Prometheus metrics on ${where}: ${why}. Set OTEL_EXPORTER_PROMETHEUS_PORT to a free port ` +
        `(or OTEL_EXPORTER_PROMETHEUS_HOST to another address). The application runs on; metrics are not served.`
    );
  });
  // The exporter unrefs its server, not the connections it accepts: a scraper's keep-alive
  // connection would keep a finished job alive. Ours never do.
  (exporter as unknown as { _server?: Server })._server?.on('connection', (socket: Socket) => socket.unref());
  return exporter;
}

/** The readers the variables ask for, each fed by its own producer of this package's metrics. */
function metricReaders(env: NodeJS.ProcessEnv, instrumentation: PgPoolInstrumentation): IMetricReader[] {
  // A worker thread's metrics are served by the main thread's readers (worker-bridge.ts).
  const forMainThread = workerReaders((aggregationTemporality) => instrumentation.metricProducer({ aggregationTemporality }));
  if (forMainThread) return forMainThread;
  const threads = new WorkerMetrics();
  const interval = integerVar(env, 'OTEL_METRIC_EXPORT_INTERVAL', 100, 86_400_000, 60_000, 'a whole number of milliseconds');
  const timeout = Math.min(interval, integerVar(env, 'OTEL_METRIC_EXPORT_TIMEOUT', 100, 86_400_000, 30_000, 'a whole number of milliseconds'));
  const readers: IMetricReader[] = [];
  for (const kind of exporterList(env, 'OTEL_METRICS_EXPORTER', METRICS_EXPORTERS, 'prometheus')) {
    if (kind === 'prometheus') readers.push(threads.reader((workers) => prometheusReader(env, [instrumentation.metricProducer(), ...workers])));
    const periodic = (exporter: PushMetricExporter) =>
      threads.reader(
        (workers) =>
          new PeriodicExportingMetricReader({
            exporter,
            exportIntervalMillis: interval,
            exportTimeoutMillis: timeout,
            // The exporter's temporality preference (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE) applies to the producer too.
            metricProducers: [instrumentation.metricProducer({ aggregationTemporality: temporalityOf(exporter) }), ...workers],
          })
      );
    if (kind === 'console') readers.push(periodic(new ConsoleMetricExporter()));
    if (kind === 'otlp') {
      readers.push(periodic(otlpMetricExporter(env)));
    }
  }
  return readers;
}

function temporalityOf(exporter: PushMetricExporter): TemporalitySelector {
  return (type) => exporter.selectAggregationTemporality?.(type) ?? AggregationTemporality.CUMULATIVE;
}

function spanProcessors(env: NodeJS.ProcessEnv): SpanProcessor[] {
  const processors: SpanProcessor[] = [];
  const kinds = exporterList(env, 'OTEL_TRACES_EXPORTER', TRACES_EXPORTERS, 'none');
  if (kinds.every((k) => k === 'none')) return processors;
  const { BatchSpanProcessor, ConsoleSpanExporter } = traceSdk();
  for (const kind of kinds) {
    if (kind === 'console') processors.push(new BatchSpanProcessor(new ConsoleSpanExporter()));
    if (kind === 'otlp') {
      processors.push(new BatchSpanProcessor(otlpSpanExporter(env)));
    }
  }
  return processors;
}

const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;

/**
 * OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, read here rather than by the SDK so that a bad
 * value is reported like every other setting. A span the sampler drops costs the package one
 * sampling decision per query: no attribute is built for it.
 */
function sampler(env: NodeJS.ProcessEnv): Sampler {
  const fallback = 'parentbased_always_on';
  const raw = env.OTEL_TRACES_SAMPLER?.trim();
  let name: (typeof SAMPLERS)[number] = fallback;
  if (raw) {
    const v = raw.toLowerCase();
    if ((SAMPLERS as readonly string[]).includes(v)) name = v as (typeof SAMPLERS)[number];
    else reportSettingProblem(describeRejected('OTEL_TRACES_SAMPLER', raw, SAMPLERS.join(', '), fallback));
  }
  const { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, TraceIdRatioBasedSampler } = traceSdk();
  const ratio = () => {
    const arg = env.OTEL_TRACES_SAMPLER_ARG;
    const n = arg === undefined || arg.trim() === '' ? NaN : Number(arg);
    if (n >= 0 && n <= 1) return n;
    if (arg !== undefined) reportSettingProblem(describeRejected('OTEL_TRACES_SAMPLER_ARG', arg, 'a ratio from 0 to 1', 1));
    return 1;
  };
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio());
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio()) });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

function resource(): Resource {
  return defaultResource().merge(detectResources({ detectors: [envDetector] }));
}

/** Starts telemetry as the OTEL_* and PG_POOL_OTEL_* variables say; undefined when OTEL_SDK_DISABLED=true. */
export function startTelemetry(env: NodeJS.ProcessEnv = process.env): RunningTelemetry | undefined {
  if (isTrue(env, 'OTEL_SDK_DISABLED')) {
    log().info('OTEL_SDK_DISABLED=true: pg-pool-otel does nothing.');
    return undefined;
  }
  const res = resource();
  // Created first: its producers go to the readers, so no SDK instrument records per query.
  const instrumentation = new PgPoolInstrumentation();
  const readers = metricReaders(env, instrumentation);
  const meterProvider = readers.length ? new MeterProvider({ resource: res, readers }) : undefined;
  const processors = spanProcessors(env);
  let tracerProvider: BasicTracerProvider | undefined;
  if (processors.length) {
    tracerProvider = new (traceSdk().BasicTracerProvider)({ resource: res, spanProcessors: processors, sampler: sampler(env) });
    // Spans need a context manager to find their parents across callbacks and awaits.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks') as typeof import('@opentelemetry/context-async-hooks');
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(tracerProvider);
  }
  // The app's own OpenTelemetry API metrics are served on the same endpoint.
  if (meterProvider) metrics.setGlobalMeterProvider(meterProvider);

  registerInstrumentations({ instrumentations: [instrumentation], meterProvider, tracerProvider });

  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    (stopping ??= Promise.allSettled([meterProvider?.shutdown(), tracerProvider?.shutdown()]).then((results) => {
      for (const r of results) if (r.status === 'rejected') log().warn(`telemetry shutdown: ${String(r.reason)}`);
    }));
  return { instrumentation, meterProvider, tracerProvider, shutdown };
}

/**
 * Flushes on beforeExit and SIGTERM. A SIGTERM listener would stop Node's default exit, so
 * after flushing, when nobody else listens, the signal is raised again to exit as before.
 */
export function shutdownOnExit(running: RunningTelemetry, flushTimeoutMs = 5000): void {
  let flushed = false;
  const flush = () => {
    if (flushed) return Promise.resolve();
    flushed = true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, flushTimeoutMs);
      timer.unref();
    });
    return Promise.race([running.shutdown(), timeout]).finally(() => clearTimeout(timer));
  };
  process.once('beforeExit', () => void flush());
  const onSigterm = () => {
    void flush().then(() => {
      if (process.listenerCount('SIGTERM') === 0) process.kill(process.pid, 'SIGTERM');
    });
  };
  process.once('SIGTERM', onSigterm);
}
