// Runs `npm run demo`'s script non-interactively for one short scenario and checks the promises of
// issue 6: it exits 0, the planted leak is detected, and no process it started is left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');

function runDemo(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.DATABASE_URL; // always the embedded server: the test must not fill someone's database
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', ...args], { cwd: ROOT, env });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGTERM'), 50_000);
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

test('demo --scenario leak detects the planted leak and leaves nothing running', { timeout: 60_000 }, async () => {
  const { code, output } = await runDemo(['--scenario', 'leak', '--duration', '8']);
  assert.equal(code, 0, output);

  // The live view printed plain lines (stdout is a pipe) read from /metrics.
  assert.match(output, /^\[leak \d+s\] orders-api .*leaked \d+/m, output);
  // The package's WARN report, with the service's own frame that took the connection.
  assert.match(output, /orders-api \| \[pg-pool-otel\] WARN .*leak/i, output);
  assert.match(output, /examples\/service\/routes\.js:\d+/, output);
  assert.match(output, /^\s+leak\s+DETECTED\s+[1-9]\d* leak detections/m, output);

  const pids = /^pids: (.*)$/m.exec(output);
  assert.ok(pids, `no pids line in:\n${output}`);
  const started = pids[1]!.split(' ').map((p) => Number(p.split('=')[1]));
  assert.ok(started.length >= 2, `expected postgres and the service among ${pids[1]}`);
  for (const pid of started) assert.equal(alive(pid), false, `pid ${pid} still running`);
});
