// Real OTLP receivers for tests: an HTTP one (protobuf and JSON bodies, as /v1/metrics and
// /v1/traces) and a gRPC one. Every export is decoded: protobuf with the OTLP definitions compiled
// by protobufjs (as shipped in @opentelemetry/otlp-transformer 0.216, the last release with
// decoders), JSON by parsing. Both are reduced to one shape so that tests compare content.
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';

/* eslint-disable @typescript-eslint/no-require-imports */
interface ProtoType {
  decode(bytes: Uint8Array): unknown;
  toObject(message: unknown, options: Record<string, unknown>): unknown;
}
const collector = (
  require('otlp-transformer-decoders/build/src/generated/root.js') as {
    opentelemetry: { proto: { collector: { metrics: { v1: { ExportMetricsServiceRequest: ProtoType } }; trace: { v1: { ExportTraceServiceRequest: ProtoType } } } } };
  }
).opentelemetry.proto.collector;
/* eslint-enable @typescript-eslint/no-require-imports */

export type Signal = 'metrics' | 'traces';
export type Encoding = 'protobuf' | 'json' | 'grpc';
export type AttrValue = string | number | boolean | undefined;

export interface ReceivedPoint {
  attributes: Record<string, AttrValue>;
  value: number | undefined;
}
export interface ReceivedMetric {
  name: string;
  /** Sums and histograms: how the points add up over exports. */
  temporality: 'delta' | 'cumulative' | undefined;
  points: ReceivedPoint[];
}
export interface ReceivedSpan {
  name: string;
  attributes: Record<string, AttrValue>;
}
export interface Export {
  signal: Signal;
  encoding: Encoding;
  /** service.name of the resource */
  service: AttrValue;
  metrics: ReceivedMetric[];
  spans: ReceivedSpan[];
}

interface OtlpKeyValue {
  key: string;
  value?: { stringValue?: string; boolValue?: boolean; intValue?: string | number; doubleValue?: number };
}
type OtlpPoint = { attributes?: OtlpKeyValue[]; asInt?: string | number; asDouble?: number; count?: string | number };
type Temporality = string | number | undefined;
interface OtlpMetric {
  name: string;
  sum?: { dataPoints?: OtlpPoint[]; aggregationTemporality?: Temporality };
  gauge?: { dataPoints?: OtlpPoint[] };
  histogram?: { dataPoints?: OtlpPoint[]; aggregationTemporality?: Temporality };
}

/** OTLP's enum: 1 delta, 2 cumulative (JSON numbers, or names from decoded protobuf). */
function temporalityOf(t: Temporality): ReceivedMetric['temporality'] {
  if (t === 1 || t === 'AGGREGATION_TEMPORALITY_DELTA') return 'delta';
  if (t === 2 || t === 'AGGREGATION_TEMPORALITY_CUMULATIVE') return 'cumulative';
  return undefined;
}
interface OtlpRequest {
  resourceMetrics?: { resource?: { attributes?: OtlpKeyValue[] }; scopeMetrics?: { metrics?: OtlpMetric[] }[] }[];
  resourceSpans?: { resource?: { attributes?: OtlpKeyValue[] }; scopeSpans?: { spans?: { name: string; attributes?: OtlpKeyValue[] }[] }[] }[];
}

function attributes(list: OtlpKeyValue[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const { key, value } of list ?? []) {
    if (!value) continue;
    out[key] = value.stringValue ?? value.boolValue ?? (value.intValue !== undefined ? Number(value.intValue) : value.doubleValue);
  }
  return out;
}

/** OTLP's request object (protobuf decoded to plain objects, or parsed JSON) in the common shape. */
function reduce(signal: Signal, encoding: Encoding, req: OtlpRequest): Export {
  const resources = signal === 'metrics' ? (req.resourceMetrics ?? []) : (req.resourceSpans ?? []);
  const out: Export = { signal, encoding, service: attributes(resources[0]?.resource?.attributes)['service.name'], metrics: [], spans: [] };
  for (const rm of req.resourceMetrics ?? []) {
    for (const sm of rm.scopeMetrics ?? []) {
      for (const m of sm.metrics ?? []) {
        const points = m.sum?.dataPoints ?? m.gauge?.dataPoints ?? m.histogram?.dataPoints ?? [];
        out.metrics.push({
          name: m.name,
          temporality: temporalityOf(m.sum?.aggregationTemporality ?? m.histogram?.aggregationTemporality),
          points: points.map((p) => ({
            attributes: attributes(p.attributes),
            value: p.asInt !== undefined ? Number(p.asInt) : (p.asDouble ?? (p.count !== undefined ? Number(p.count) : undefined)),
          })),
        });
      }
    }
  }
  for (const rs of req.resourceSpans ?? []) {
    for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) out.spans.push({ name: s.name, attributes: attributes(s.attributes) });
  }
  return out;
}

function decodeProtobuf(signal: Signal, encoding: Encoding, body: Uint8Array): Export {
  const type = signal === 'metrics' ? collector.metrics.v1.ExportMetricsServiceRequest : collector.trace.v1.ExportTraceServiceRequest;
  // longs as strings: int64 values survive without the `long` package.
  return reduce(signal, encoding, type.toObject(type.decode(body), { longs: String, enums: String, defaults: false }) as OtlpRequest);
}

export interface Receiver {
  /** http://127.0.0.1:port, for OTEL_EXPORTER_OTLP_ENDPOINT */
  url: string;
  exports: Export[];
  /** Requests that could not be decoded (content type and error), expected to stay empty. */
  failures: string[];
  close(): Promise<void>;
}

/** OTLP/HTTP: protobuf (application/x-protobuf) or JSON (application/json), told apart by content type. */
export async function startHttpReceiver(): Promise<Receiver> {
  const exports: Export[] = [];
  const failures: string[] = [];
  const server: HttpServer = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const signal: Signal | undefined = req.url === '/v1/metrics' ? 'metrics' : req.url === '/v1/traces' ? 'traces' : undefined;
      const type = String(req.headers['content-type'] ?? '');
      const body = Buffer.concat(chunks);
      try {
        if (!signal) throw new Error(`unexpected path ${req.url}`);
        if (type.startsWith('application/x-protobuf')) {
          exports.push(decodeProtobuf(signal, 'protobuf', body));
          // An empty Export*ServiceResponse encodes to zero bytes.
          res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        } else if (type.startsWith('application/json')) {
          exports.push(reduce(signal, 'json', JSON.parse(body.toString('utf8')) as OtlpRequest));
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        } else {
          throw new Error(`unexpected content type "${type}"`);
        }
      } catch (err) {
        failures.push(`${req.url} ${type}: ${String(err)}`);
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    exports,
    failures,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** OTLP/gRPC: the two Export methods, with raw bytes in and out, decoded like the HTTP protobuf body. */
export async function startGrpcReceiver(): Promise<Receiver> {
  const exports: Export[] = [];
  const failures: string[] = [];
  const server = new grpc.Server();
  const raw = (b: Buffer) => b;
  const service = (signal: Signal, path: string) => {
    server.addService(
      {
        Export: { path, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
      },
      {
        Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          try {
            exports.push(decodeProtobuf(signal, 'grpc', call.request));
          } catch (err) {
            failures.push(`${path}: ${String(err)}`);
          }
          callback(null, Buffer.alloc(0));
        },
      }
    );
  };
  service('metrics', '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export');
  service('traces', '/opentelemetry.proto.collector.trace.v1.TraceService/Export');
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)))
  );
  return {
    url: `http://127.0.0.1:${port}`,
    exports,
    failures,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
      }),
  };
}
