// Soak: a million queries, a hundred thousand of them on pool.connect() checkouts, through the
// preload with leak detection, stack capture, server sampling and spans (to a real OTLP/HTTP
// receiver) on. The heap after forced GC must not grow: anything the package kept per query or
// per checkout (a Map entry, a closure, a span) would show up as megabytes here.
// (Throughput is measured by `npm run bench`, not here.)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { usePostgres } from './support/server';
import { freePort } from '../tools/embedded-postgres';
import { startApp } from './support/child';

const QUERIES = 1_000_000;
const CHECKOUTS = 100_000;
/** Growth allowed between the heap after warm-up and after the run (and at every 10% on the way). */
const MAX_GROWTH_BYTES = 3 * 1024 * 1024;

const server = usePostgres({ maxConnections: 40 });

/**
 * An OTLP/HTTP receiver: it accepts and counts export requests, or, while `hanging`, reads them
 * and never answers (the worst kind of collector outage: every export waits for its timeout).
 */
let receiver: Server;
let exports = 0;
let hanging = false;
const held = new Set<Socket>();
before(async () => {
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (hanging) {
        held.add(req.socket);
        return;
      }
      if (req.url === '/v1/traces') exports++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
});
after(() => {
  for (const s of held) s.destroy();
  return new Promise<void>((resolve) => receiver.close(() => resolve()));
});

const mib = (b: number) => `${(b / 1024 / 1024).toFixed(2)} MiB`;

/** Sum of every sample of a metric on a Prometheus page whose labels contain `labels`. */
function total(page: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of page.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

interface SoakResult {
  queries: number;
  checkouts: number;
  pools: number;
  seconds: number;
  before: number;
  after: number;
  samples: number[];
  page: string;
}

/** Runs the soak fixture under the preload; `env` adds to the common settings. */
async function soak(queries: number, checkouts: number, env: Record<string, string>): Promise<{ r: SoakResult; stderr: string; report: string }> {
  const port = await freePort();
  const address = receiver.address();
  const receiverPort = typeof address === 'object' && address ? address.port : 0;
  const app = startApp(['--expose-gc', '--require', './dist/register.js', 'test/fixtures/soak/app.cjs'], {
    DATABASE_URL: server.current.url,
    QUERIES: String(queries),
    CHECKOUTS: String(checkouts),
    OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
    OTEL_EXPORTER_PROMETHEUS_PORT: String(port),
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiverPort}`,
    OTEL_BSP_SCHEDULE_DELAY: '200',
    PG_POOL_OTEL_LEAK_THRESHOLD_MS: '5000',
    PG_POOL_OTEL_LEAK_CHECK_INTERVAL_MS: '100',
    PG_POOL_OTEL_CAPTURE_STACKS: 'true',
    PG_POOL_OTEL_SERVER_SAMPLE_INTERVAL_MS: '500',
    PG_POOL_OTEL_MAX_COLLECTION_NAMES: '20',
    PG_POOL_OTEL_CONFIG_ADVICE: 'false',
    ...env,
  });
  try {
    const { code } = await app.exited;
    assert.equal(code, 0, app.stderr());
  } finally {
    app.kill();
  }
  const r = JSON.parse(app.stdout().trim().split('\n').pop()!) as SoakResult;
  const report =
    `${r.queries} queries (${r.checkouts} on checkouts) in ${r.seconds.toFixed(0)} s; heap ${mib(r.before)} -> ${mib(r.after)} ` +
    `(every 10%: ${r.samples.map((s) => (s / 1024 / 1024).toFixed(1)).join(' ')} MiB)`;
  console.log(`soak: ${report}`);
  return { r, stderr: app.stderr(), report };
}

function assertHeapStable(r: SoakResult, report: string, maxGrowth = MAX_GROWTH_BYTES): void {
  assert.ok(r.after - r.before <= maxGrowth, `heap grew ${mib(r.after - r.before)}: ${report}`);
  for (const s of r.samples) assert.ok(s - r.before <= maxGrowth, `heap rose to ${mib(s)} on the way: ${report}`);
}

describe('soak', { timeout: 540_000 }, () => {
  it(`${QUERIES} queries and ${CHECKOUTS} checkouts with leak detection on: heap stable`, async () => {
    const { r, stderr, report } = await soak(QUERIES, CHECKOUTS, {});

    // It really ran: every query, checkout and short-lived pool went through the instrumentation.
    assert.equal(r.checkouts, CHECKOUTS);
    const queried = total(r.page, 'db_client_operation_duration_count');
    assert.ok(queried >= QUERIES, `db.client.operation.duration counted ${queried} queries`);
    assert.ok(total(r.page, 'db_client_connection_use_time_count', 'db_client_connection_pool_name="soak"') >= QUERIES);
    assert.ok(total(r.page, 'pg_pool_pools_created_total') >= r.pools + 1);
    assert.ok(exports > 0, 'spans were exported to the receiver');
    // Nothing was leaked or reported as leaked, and the collection names stayed capped.
    assert.equal(total(r.page, 'pg_pool_checkout_leak_detections_total'), 0);
    assert.equal(total(r.page, 'pg_pool_checkout_leaked'), 0);
    const collections = new Set([...r.page.matchAll(/db_collection_name="([^"]*)"/g)].map((m) => m[1]));
    assert.ok(collections.size <= 21, `collection names capped: ${[...collections].join(' ')}`);
    assert.ok(collections.has('other'));
    assert.doesNotMatch(stderr, /internal error/);

    // The point: a heap that does not grow with traffic.
    assertHeapStable(r, report);
  });

  it('the OTLP collector hangs (spans and metrics): memory stays bounded and the app runs to the end', async () => {
    hanging = true;
    try {
      const { r, stderr, report } = await soak(QUERIES / 5, CHECKOUTS / 5, {
        // Long enough for the span queue to fill and several exports to time out first.
        WARMUP: String(QUERIES / 20),
        OTEL_METRICS_EXPORTER: 'prometheus,otlp',
        OTEL_METRIC_EXPORT_INTERVAL: '1000',
        OTEL_METRIC_EXPORT_TIMEOUT: '500',
        OTEL_EXPORTER_OTLP_TIMEOUT: '500',
      });
      assert.ok(held.size > 0, 'exports reached the hanging collector');
      assert.ok(total(r.page, 'db_client_operation_duration_count') >= QUERIES / 5, 'metrics still served on /metrics');
      assert.doesNotMatch(stderr, /internal error/);
      // Export requests in flight (each a serialized batch) come and go: a wider band than above,
      // still far below what keeping the 200k spans, or any per-query object, would add.
      assertHeapStable(r, report, 8 * 1024 * 1024);
    } finally {
      hanging = false;
    }
  });
});
