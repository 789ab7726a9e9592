// The OTLP exporters of the preload, chosen as the specification says: OTEL_EXPORTER_OTLP_PROTOCOL,
// overridden per signal by OTEL_EXPORTER_OTLP_{TRACES,METRICS}_PROTOCOL; http/protobuf by default.
// Each exporter package is loaded only when chosen, so a Prometheus-only service loads none.
// gRPC brings @grpc/grpc-js and protobufjs (about 20 MB and 40 packages installed), and few send
// JSON spans: those exporters are optional peer dependencies, used when the application installed
// them, refused in one line when not. (The JSON metric exporter stays: the protobuf one builds on it.)
import type { PushMetricExporter } from '@opentelemetry/sdk-metrics';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { describeRejected, reportSettingProblem } from '../settings';

export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json', 'grpc'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];
export type OtlpSignal = 'TRACES' | 'METRICS';

const DEFAULT_PROTOCOL: OtlpProtocol = 'http/protobuf';
const ACCEPTS = 'http/protobuf, http/json or grpc';

export interface ChosenProtocol {
  protocol: OtlpProtocol;
  /** The variable that decided, for messages; undefined when neither is set. */
  variable: string | undefined;
}

function readProtocol(env: NodeJS.ProcessEnv, name: string, fallback: ChosenProtocol): ChosenProtocol {
  const raw = env[name];
  // The specification treats an empty value as unset.
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = raw.trim().toLowerCase();
  if ((OTLP_PROTOCOLS as readonly string[]).includes(value)) return { protocol: value as OtlpProtocol, variable: name };
  reportSettingProblem(describeRejected(name, raw, ACCEPTS, fallback.protocol));
  return fallback;
}

/** The protocol for one signal: the signal's own variable, else the general one, else http/protobuf. */
export function otlpProtocol(env: NodeJS.ProcessEnv, signal: OtlpSignal): ChosenProtocol {
  const general = readProtocol(env, 'OTEL_EXPORTER_OTLP_PROTOCOL', { protocol: DEFAULT_PROTOCOL, variable: undefined });
  return readProtocol(env, `OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`, general);
}

// Literal require() calls, one per package, each run only when its protocol is chosen.
/* eslint-disable @typescript-eslint/no-require-imports */
type MetricExporterClass = new () => PushMetricExporter;
const METRIC_EXPORTERS: Record<OtlpProtocol, { pkg: string; load(): MetricExporterClass }> = {
  'http/protobuf': {
    pkg: '@opentelemetry/exporter-metrics-otlp-proto',
    load: () => (require('@opentelemetry/exporter-metrics-otlp-proto') as typeof import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter,
  },
  'http/json': {
    pkg: '@opentelemetry/exporter-metrics-otlp-http',
    load: () => (require('@opentelemetry/exporter-metrics-otlp-http') as typeof import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter,
  },
  grpc: {
    pkg: '@opentelemetry/exporter-metrics-otlp-grpc',
    load: () => (require('@opentelemetry/exporter-metrics-otlp-grpc') as typeof import('@opentelemetry/exporter-metrics-otlp-grpc')).OTLPMetricExporter,
  },
};

type SpanExporterClass = new () => SpanExporter;
const SPAN_EXPORTERS: Record<OtlpProtocol, { pkg: string; load(): SpanExporterClass }> = {
  'http/protobuf': {
    pkg: '@opentelemetry/exporter-trace-otlp-proto',
    load: () => (require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter,
  },
  'http/json': {
    pkg: '@opentelemetry/exporter-trace-otlp-http',
    load: () => (require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter,
  },
  grpc: {
    pkg: '@opentelemetry/exporter-trace-otlp-grpc',
    load: () => (require('@opentelemetry/exporter-trace-otlp-grpc') as typeof import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter,
  },
};
/* eslint-enable @typescript-eslint/no-require-imports */

function isMissing(err: unknown, pkg: string): boolean {
  const e = err as { code?: unknown; message?: unknown };
  return e?.code === 'MODULE_NOT_FOUND' && typeof e.message === 'string' && e.message.includes(`'${pkg}'`);
}

/** Loads the exporter class for the chosen protocol; a missing optional package (not the default's) falls back to the default. */
function exporterClass<T>(table: Record<OtlpProtocol, { pkg: string; load(): T }>, chosen: ChosenProtocol): T {
  const entry = table[chosen.protocol];
  try {
    return entry.load();
  } catch (err) {
    if (chosen.protocol === DEFAULT_PROTOCOL || !isMissing(err, entry.pkg)) throw err;
    const others = OTLP_PROTOCOLS.filter((p) => p !== chosen.protocol).join(' or ');
    reportSettingProblem(
      `${chosen.variable}="${chosen.protocol}" needs the optional package ${entry.pkg} (npm install ${entry.pkg}@^0.223.0), ` +
        `which is not installed: install it or set ${chosen.variable} to ${others}; using the default ${DEFAULT_PROTOCOL}.`
    );
    return table[DEFAULT_PROTOCOL].load();
  }
}

/** The OTLP metric exporter the OTEL_EXPORTER_OTLP_* variables ask for (endpoint, headers etc. are read by the exporter). */
export function otlpMetricExporter(env: NodeJS.ProcessEnv = process.env): PushMetricExporter {
  const Exporter = exporterClass(METRIC_EXPORTERS, otlpProtocol(env, 'METRICS'));
  return new Exporter();
}

/** The OTLP span exporter the OTEL_EXPORTER_OTLP_* variables ask for. */
export function otlpSpanExporter(env: NodeJS.ProcessEnv = process.env): SpanExporter {
  const Exporter = exporterClass(SPAN_EXPORTERS, otlpProtocol(env, 'TRACES'));
  return new Exporter();
}
