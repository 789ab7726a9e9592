// OTLP as the specification says: OTEL_EXPORTER_OTLP_PROTOCOL and its per-signal forms choose
// http/protobuf (the default), http/json or grpc. A preloaded app exports to real receivers that
// decode every request; its pool metrics and query spans must arrive intact, in the chosen
// encoding, and only the chosen exporter packages may be loaded.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { usePostgres } from './support/server';
import { freePort } from '../tools/embedded-postgres';
import { startApp } from './support/child';
import { eventually } from './support/telemetry';
import { startGrpcReceiver, startHttpReceiver, type Encoding, type Export, type Receiver } from './support/otlp-receiver';

const server = usePostgres();
let http: Receiver;
let grpc: Receiver;
before(async () => {
  http = await startHttpReceiver();
  grpc = await startGrpcReceiver();
});
after(async () => {
  await http?.close();
  await grpc?.close();
});

const PROTOCOL_VARS = ['OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'];

interface Run {
  exports: Export[];
  stderr: string;
  /** exporter packages the app loaded */
  loaded: string[];
}

const usedConnections = (e: Export) =>
  e.metrics
    .find((m) => m.name === 'db.client.connection.count')
    ?.points.find((p) => p.attributes['db.client.connection.pool.name'] === 'fixture' && p.attributes['db.client.connection.state'] === 'used')?.value;
const itemsSpan = (e: Export) => e.spans.find((s) => s.name === 'SELECT items');

/** Runs the preload fixture against `receiver` until its metrics and spans have arrived. */
async function run(receiver: Receiver | undefined, env: Record<string, string>, preloads: string[] = []): Promise<Run> {
  const first = receiver?.exports.length ?? 0;
  const unset = Object.fromEntries(PROTOCOL_VARS.map((v) => [v, undefined]));
  const app = startApp(
    [...preloads.flatMap((p) => ['--require', p]), '--require', './test/fixtures/otlp/loaded.cjs', '--require', './dist/register.js', 'test/fixtures/preload/app.cjs'],
    {
      ...unset,
      DATABASE_URL: server.current.url,
      OTEL_SERVICE_NAME: 'otlp-fixture',
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver?.url ?? 'http://127.0.0.1:1',
      OTEL_METRIC_EXPORT_INTERVAL: '200',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      PG_POOL_OTEL_LEAK_THRESHOLD_MS: '0',
      PG_POOL_OTEL_CONFIG_ADVICE: 'false',
      ...env,
    }
  );
  try {
    await app.waitFor('READY');
    if (receiver) {
      // At READY the fixture holds both connections of its pool: the export after that says so.
      const mine = () => receiver.exports.slice(first);
      await eventually(() => mine().some((e) => usedConnections(e) === 2) && mine().some((e) => itemsSpan(e) !== undefined), 10_000, 'metrics and spans at the receiver');
    }
    app.child.stdin!.end('go\n');
    const { code } = await app.exited;
    assert.equal(code, 0, app.stderr());
    const loaded = /^LOADED (.*)$/m.exec(app.stdout());
    assert.ok(loaded, app.stdout());
    return { exports: receiver?.exports.slice(first) ?? [], stderr: app.stderr(), loaded: JSON.parse(loaded[1]!) as string[] };
  } finally {
    app.kill();
  }
}

/** Every export arrived in the expected encoding and carries the fixture's real data. */
function assertContent(r: Run, metrics: Encoding, traces: Encoding): void {
  const bySignal = (s: string) => r.exports.filter((e) => e.signal === s);
  assert.deepEqual([...new Set(bySignal('metrics').map((e) => e.encoding))], [metrics]);
  assert.deepEqual([...new Set(bySignal('traces').map((e) => e.encoding))], [traces]);
  for (const e of r.exports) assert.equal(e.service, 'otlp-fixture');

  const metricNames = new Set(bySignal('metrics').flatMap((e) => e.metrics.map((m) => m.name)));
  for (const name of ['db.client.connection.count', 'db.client.connection.max', 'db.client.connection.wait_time', 'db.client.operation.duration']) {
    assert.ok(metricNames.has(name), `${name} missing from ${[...metricNames].join(', ')}`);
  }
  const max = bySignal('metrics')
    .flatMap((e) => e.metrics.filter((m) => m.name === 'db.client.connection.max'))
    .flatMap((m) => m.points)
    .find((p) => p.attributes['db.client.connection.pool.name'] === 'fixture');
  assert.equal(max?.value, 2);
  assert.equal(max?.attributes['server.address'], '127.0.0.1');

  const span = bySignal('traces').map(itemsSpan).find(Boolean);
  assert.ok(span);
  assert.equal(span.attributes['db.system.name'], 'postgresql');
  assert.equal(span.attributes['db.collection.name'], 'items');
  assert.equal(span.attributes['db.query.text'], 'SELECT * FROM items WHERE id = $1');
  assert.equal(span.attributes['server.port'], server.current.port);
  const failed = bySignal('traces').flatMap((e) => e.spans).find((s) => s.name === 'SELECT missing');
  assert.equal(failed?.attributes['error.type'], '42P01');
}

// The protobuf and gRPC metric exporters build on the JSON one's base class, so it loads with them.
const PROTO = ['@opentelemetry/exporter-metrics-otlp-http', '@opentelemetry/exporter-metrics-otlp-proto', '@opentelemetry/exporter-trace-otlp-proto'];

describe('OTLP protocols', { timeout: 120_000 }, () => {
  it('default: http/protobuf for both signals, and only the protobuf exporters are loaded', async () => {
    const r = await run(http, {});
    assertContent(r, 'protobuf', 'protobuf');
    assert.deepEqual(r.loaded, PROTO);
    assert.deepEqual(http.failures, []);
  });

  it('OTEL_EXPORTER_OTLP_PROTOCOL=http/json: JSON for both signals', async () => {
    const r = await run(http, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
    assertContent(r, 'json', 'json');
    assert.deepEqual(r.loaded, ['@opentelemetry/exporter-metrics-otlp-http', '@opentelemetry/exporter-trace-otlp-http']);
    assert.deepEqual(http.failures, []);
  });

  it('OTEL_EXPORTER_OTLP_PROTOCOL=grpc: both signals over gRPC', async () => {
    const r = await run(grpc, { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
    assertContent(r, 'grpc', 'grpc');
    assert.deepEqual(r.loaded, ['@opentelemetry/exporter-metrics-otlp-grpc', '@opentelemetry/exporter-metrics-otlp-http', '@opentelemetry/exporter-trace-otlp-grpc']);
    assert.deepEqual(grpc.failures, []);
  });

  it('a per-signal variable wins; a bad value is reported once and the default is used', async () => {
    const r = await run(http, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/xml', OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json' });
    assertContent(r, 'json', 'protobuf');
    const warning = 'OTEL_EXPORTER_OTLP_PROTOCOL="http/xml" is not valid: expected http/protobuf, http/json or grpc; using the default http/protobuf.';
    assert.equal(r.stderr.split(warning).length - 1, 1, r.stderr);
    assert.deepEqual(r.loaded, ['@opentelemetry/exporter-metrics-otlp-http', '@opentelemetry/exporter-trace-otlp-proto']);
    assert.deepEqual(http.failures, []);
  });

  it('grpc without the optional gRPC exporter installed: one line saying what to install, then http/protobuf', async () => {
    const r = await run(http, { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' }, ['./test/fixtures/otlp/hide-grpc.cjs']);
    assertContent(r, 'protobuf', 'protobuf');
    const lines = r.stderr.split('\n').filter((l) => l.includes('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="grpc" needs the optional package @opentelemetry\/exporter-trace-otlp-grpc \(npm install .*\).*http\/protobuf or http\/json; using the default http\/protobuf\.$/);
    assert.deepEqual(r.loaded, PROTO);
  });

  it('http/json spans without the optional JSON span exporter installed: one line saying what to install, then http/protobuf', async () => {
    const r = await run(http, { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }, ['./test/fixtures/otlp/hide-json-traces.cjs']);
    assertContent(r, 'protobuf', 'protobuf');
    const lines = r.stderr.split('\n').filter((l) => l.includes('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http\/json" needs the optional package @opentelemetry\/exporter-trace-otlp-http \(npm install .*\).*http\/protobuf or grpc; using the default http\/protobuf\.$/);
    assert.deepEqual(r.loaded, PROTO);
  });

  it('Prometheus only: no OTLP exporter package is loaded', async () => {
    const r = await run(undefined, { OTEL_METRICS_EXPORTER: 'prometheus', OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_PROMETHEUS_PORT: String(await freePort()) });
    assert.deepEqual(r.loaded, []);
  });
});
