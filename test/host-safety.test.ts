// The package must not change what the host application does: crashes it would have, errors it
// would see, and exiting by itself. Each case runs the same app with and without the preload.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { usePostgres, terminateBackend } from './support/server';
import { freePort } from '../tools/embedded-postgres';
import { startApp } from './support/child';

const server = usePostgres();
const PRELOAD = ['--require', './dist/register.js'];
const APP = 'test/fixtures/safety/app.cjs';

async function run(mode: string, preload: boolean, env: NodeJS.ProcessEnv = {}, during?: (out: () => string) => Promise<void>) {
  const port = await freePort();
  const app = startApp([...(preload ? PRELOAD : []), APP, mode], {
    DATABASE_URL: server.current.url,
    OTEL_EXPORTER_PROMETHEUS_PORT: String(port),
    ...env,
  });
  const started = Date.now();
  try {
    if (during) await during(app.stdout);
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${mode} did not exit; stdout: ${app.stdout()} stderr: ${app.stderr()}`)), 20_000).unref());
    const exit = await Promise.race([app.exited, timeout]);
    return { ...exit, stdout: app.stdout(), stderr: app.stderr(), ms: Date.now() - started };
  } finally {
    app.kill();
  }
}

async function waitFor(out: () => string, re: RegExp): Promise<RegExpExecArray> {
  for (let i = 0; i < 500; i++) {
    const m = re.exec(out());
    if (m) return m;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no ${re} in ${out()}`);
}

describe('semantics unchanged', { timeout: 180_000 }, () => {
  it('an idle client error with no listener still crashes the process', async () => {
    for (const preload of [false, true]) {
      const r = await run('idle-error', preload, {}, async (out) =>
        terminateBackend(require('pg') as typeof import('pg'), server.current.url, Number((await waitFor(out, /PID (\d+)/))[1])));
      assert.notEqual(r.code, 0, `preload=${preload}: the process must crash`);
      assert.match(r.stderr, /terminating connection due to administrator command/);
      assert.doesNotMatch(r.stdout, /STILL ALIVE/);
    }
  });

  it('an unhandled query rejection still crashes the process', async () => {
    const bare = await run('unhandled', false);
    const withPackage = await run('unhandled', true);
    assert.notEqual(bare.code, 0);
    assert.equal(withPackage.code, bare.code);
    assert.match(withPackage.stderr, /no_such_table_here/);
  });

  it('double release throws the same error', async () => {
    const bare = await run('double-release', false);
    const withPackage = await run('double-release', true);
    assert.match(bare.stdout, /THROWN Release called on client which has already been released to the pool\./);
    assert.equal(withPackage.stdout, bare.stdout);
  });

  it('pool.end() with an outstanding checkout waits for it, as without the package', async () => {
    const bare = await run('end-outstanding', false);
    const withPackage = await run('end-outstanding', true);
    assert.match(bare.stdout, /ORDER release,ended/);
    assert.equal(withPackage.stdout, bare.stdout);
  });

  it('the process exits by itself, with leak detection and server sampling running', async () => {
    const r = await run('exit', true, {
      PG_POOL_OTEL_LEAK_THRESHOLD_MS: '100',
      PG_POOL_OTEL_LEAK_CHECK_INTERVAL_MS: '20',
      PG_POOL_OTEL_SERVER_SAMPLE_INTERVAL_MS: '100',
      HOLD_MS: '300',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /DONE/);
    assert.ok(r.ms < 10_000, `exited after ${r.ms} ms`);
  });
});

describe('exporters down', { timeout: 120_000 }, () => {
  it('a taken Prometheus port: one clear warning naming the port and the variable, and the app runs on', async () => {
    const blocker = createServer();
    const port = await new Promise<number>((resolve) => blocker.listen(0, () => resolve((blocker.address() as { port: number }).port)));
    try {
      const r = await run('exit', true, { OTEL_EXPORTER_PROMETHEUS_PORT: String(port) });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /DONE/);
      const lines = r.stderr.split('\n').filter((l) => l.includes(`:${port}`));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /already in use.*OTEL_EXPORTER_PROMETHEUS_PORT/);
    } finally {
      blocker.close();
    }
  });

  it('an unreachable OTLP endpoint: the app runs on and exits', async () => {
    const closed = await freePort();
    const r = await run('exit', true, {
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${closed}`,
      // Exports fail and retry with backoff until the exporter's timeout: shorter than the interval,
      // so nothing is left pending when the app is done.
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      OTEL_METRIC_EXPORT_TIMEOUT: '500',
      OTEL_EXPORTER_OTLP_TIMEOUT: '500',
      HOLD_MS: '2500',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /DONE/);
  });
});

describe('faults while exporting', { timeout: 60_000 }, () => {
  it('a metric callback that throws during /metrics scrapes: every scrape answers, one log line per place', async () => {
    const r = await run('broken-gauges', true);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.match(/SCRAPE .*/g), ['SCRAPE 200 true', 'SCRAPE 200 true', 'SCRAPE 200 true']);
    // Each callback that met the fault says so once, however many scrapes hit it.
    const places = r.stderr.split('\n').flatMap((l) => /internal error in ([^(]+) \(reported once; the application is unaffected\)/.exec(l)?.[1] ?? []);
    assert.ok(places.includes('pool gauge collection'), r.stderr);
    assert.equal(new Set(places).size, places.length, r.stderr);
    assert.match(r.stdout, /DONE/);
  });
});

describe('bad settings', { timeout: 60_000 }, () => {
  it('every variable with a bad value: one line naming it, then defaults, and the app runs', async () => {
    const bad: Record<string, string> = {
      PG_POOL_OTEL_QUERY_TEXT: 'maybe',
      PG_POOL_OTEL_CAPTURE_STACKS: '',
      PG_POOL_OTEL_LEAK_THRESHOLD_MS: '-5',
      PG_POOL_OTEL_LEAK_CHECK_INTERVAL_MS: '1e99',
      PG_POOL_OTEL_SLOW_WAIT_MS: 'soon',
      PG_POOL_OTEL_STACK_CAPTURES_PER_SECOND: 'lots',
      PG_POOL_OTEL_RELEASE_IN_TRANSACTION: 'explode',
      PG_POOL_OTEL_POOL_BURST_COUNT: 'ten',
      PG_POOL_OTEL_POOL_BURST_WINDOW_MS: '99999999999999999999',
      PG_POOL_OTEL_CONFIG_ADVICE: '2',
      PG_POOL_OTEL_SERVER_SAMPLE_INTERVAL_MS: '5',
      PG_POOL_OTEL_MAX_OPERATION_NAMES: '0',
      PG_POOL_OTEL_MAX_COLLECTION_NAMES: '-1',
      PG_POOL_OTEL_LOG_LEVEL: 'loud',
      OTEL_SDK_DISABLED: 'yes please',
      OTEL_METRICS_EXPORTER: 'graphite',
      OTEL_TRACES_EXPORTER: 'jaeger',
      OTEL_METRIC_EXPORT_INTERVAL: '-1',
      OTEL_METRIC_EXPORT_TIMEOUT: 'soon',
    };
    const port = await freePort();
    const r = await run('exit', true, { ...bad, OTEL_EXPORTER_PROMETHEUS_PORT: String(port) });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /DONE/);
    for (const [name, value] of Object.entries(bad)) {
      const lines = r.stderr.split('\n').filter((l) => l.includes(`${name}=`) && l.includes('is not valid'));
      assert.equal(lines.length, 1, `${name}: expected one line, got ${lines.length}:\n${r.stderr}`);
      assert.ok(lines[0]!.includes(JSON.stringify(value)), `${name}: the line shows the value: ${lines[0]}`);
      assert.match(lines[0]!, /expected .*; using the default/);
    }
  });

  it('a malformed Prometheus port is named too', async () => {
    const r = await run('exit', true, { OTEL_EXPORTER_PROMETHEUS_PORT: '99999' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /OTEL_EXPORTER_PROMETHEUS_PORT="99999" is not valid: expected a TCP port number from 0 to 65535; using the default 9464/);
  });
});
