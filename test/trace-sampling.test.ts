// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG as the specification says, under the preload:
// spans counted at a real OTLP receiver; a bad value is reported and the default sampler used.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { usePostgres } from './support/server';
import { startApp } from './support/child';
import { startHttpReceiver, type Receiver } from './support/otlp-receiver';

const server = usePostgres();
let receiver: Receiver;
before(async () => {
  receiver = await startHttpReceiver();
});
after(() => receiver?.close());

async function spansFor(queries: number, env: Record<string, string>): Promise<{ spans: number; stderr: string }> {
  const first = receiver.exports.length;
  const app = startApp(['--require', './dist/register.js', 'test/fixtures/otlp/queries.cjs'], {
    DATABASE_URL: server.current.url,
    QUERIES: String(queries),
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    PG_POOL_OTEL_CONFIG_ADVICE: 'false',
    PG_POOL_OTEL_SERVER_SAMPLE_INTERVAL_MS: '0',
    ...env,
  });
  try {
    const { code } = await app.exited;
    assert.equal(code, 0, app.stderr());
    assert.match(app.stdout(), /DONE/);
    const spans = receiver.exports.slice(first).flatMap((e) => e.spans).filter((s) => s.name === 'SELECT');
    return { spans: spans.length, stderr: app.stderr() };
  } finally {
    app.kill();
  }
}

describe('trace sampling under the preload', { timeout: 60_000 }, () => {
  it('exports every query span by default (parentbased_always_on)', async () => {
    assert.equal((await spansFor(20, {})).spans, 20);
  });

  it('exports none with always_off', async () => {
    // The same run with the default exports 20 (above): zero here is the sampler's doing.
    assert.equal((await spansFor(20, { OTEL_TRACES_SAMPLER: 'always_off' })).spans, 0);
  });

  it('exports about the given ratio with traceidratio', async () => {
    const { spans } = await spansFor(300, { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' });
    // Binomial(300, 0.25): mean 75, standard deviation 7.5; 30..120 is six deviations each way.
    assert.ok(spans > 30 && spans < 120, `${spans} of 300`);
  });

  it('reports a bad sampler or ratio by name and uses the default', async () => {
    const bad = await spansFor(5, { OTEL_TRACES_SAMPLER: 'sometimes' });
    assert.equal(bad.spans, 5);
    assert.match(bad.stderr, /OTEL_TRACES_SAMPLER="sometimes" is not valid: expected always_on, always_off, traceidratio, .*parentbased_traceidratio; using the default parentbased_always_on/);
    const badArg = await spansFor(5, { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' });
    assert.equal(badArg.spans, 5);
    assert.match(badArg.stderr, /OTEL_TRACES_SAMPLER_ARG="2" is not valid: expected a ratio from 0 to 1; using the default 1/);
  });
});
