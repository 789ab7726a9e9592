// The preload's producer follows the OTLP exporter's temporality preference
// (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE): a real receiver decodes what arrives.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { usePostgres } from './support/server';
import { startApp } from './support/child';
import { eventually } from './support/telemetry';
import { startHttpReceiver, type Receiver, type ReceivedMetric } from './support/otlp-receiver';

const server = usePostgres();
let receiver: Receiver;
before(async () => {
  receiver = await startHttpReceiver();
});
after(() => receiver?.close());

/** The wait_time histogram of pool "phases" in each export, in arrival order. */
function waits(from: number): { temporality: ReceivedMetric['temporality']; count: number }[] {
  const out: { temporality: ReceivedMetric['temporality']; count: number }[] = [];
  for (const e of receiver.exports.slice(from)) {
    const m = e.metrics.find((x) => x.name === 'db.client.connection.wait_time');
    const p = m?.points.find((x) => x.attributes['db.client.connection.pool.name'] === 'phases');
    if (m && p) out.push({ temporality: m.temporality, count: p.value ?? NaN });
  }
  return out;
}

async function runPhases(preference: string | undefined, protocol: string): Promise<{ temporality: ReceivedMetric['temporality']; count: number }[]> {
  const first = receiver.exports.length;
  const app = startApp(['--require', './dist/register.js', 'test/fixtures/otlp/phases.cjs'], {
    DATABASE_URL: server.current.url,
    OTEL_METRICS_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: preference,
    OTEL_METRIC_EXPORT_INTERVAL: '150',
    PG_POOL_OTEL_CONFIG_ADVICE: 'false',
    PG_POOL_OTEL_SERVER_SAMPLE_INTERVAL_MS: '0',
  });
  try {
    await app.waitFor('PHASE 1');
    // Two exports after phase 1, so the second says what an idle interval looks like.
    await eventually(() => waits(first).length >= 2, 5000, 'exports after phase 1');
    app.child.stdin!.write('next\n');
    await app.waitFor('PHASE 2');
    const seen = waits(first).length;
    await eventually(() => waits(first).length >= seen + 2, 5000, 'exports after phase 2');
    app.child.stdin!.end('go\n');
    assert.equal((await app.exited).code, 0, app.stderr());
    return waits(first);
  } finally {
    app.kill();
  }
}

describe('OTLP metric temporality through the producer', { timeout: 60_000 }, () => {
  it('cumulative by default: totals that only grow, 5 then 8', async () => {
    const points = await runPhases(undefined, 'http/json');
    assert.ok(points.every((p) => p.temporality === 'cumulative'), JSON.stringify(points));
    const counts = points.map((p) => p.count);
    assert.deepEqual([...counts].sort((a, b) => a - b), counts, `never decreasing: ${counts}`);
    assert.ok(counts.includes(5), `${counts}`);
    assert.equal(counts.at(-1), 8, `${counts}`);
  });

  it('delta when the preference says so: each export counts only its own interval', async () => {
    const points = await runPhases('delta', 'http/protobuf');
    assert.ok(points.every((p) => p.temporality === 'delta'), JSON.stringify(points));
    const counts = points.map((p) => p.count);
    assert.equal(counts.reduce((a, b) => a + b, 0), 8, `${counts}`);
    assert.ok(counts.includes(0), `an idle interval reports 0: ${counts}`);
    assert.ok(Math.max(...counts) <= 5, `${counts}`);
  });
});
