// A leak inside a request handler that a web framework installed under node_modules calls (Express,
// with its router and body-parser in the stack): the report prints the handler's own line and the
// application's frames only, no framework frame. Library code is anything under node_modules,
// not a list of known packages.
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { PoolClient } from 'pg';
import { instrument, eventually } from './support/telemetry';
import { usePostgres } from './support/server';
import { setPoolName } from '../src/index';
import { captureLog, siteOf } from './fixtures/leaks/capture';

const t = instrument({ leakThresholdMs: 300, leakCheckIntervalMs: 20, configAdvice: false, poolBurstCount: 0 });
void t.instrumentation.settings; // settings install the stderr logger: replace it afterwards
const logs = captureLog();
const server = usePostgres();
after(() => t.shutdown());
afterEach(() => logs.clear());

/** The few parts of Express used here (no @types/express installed). */
type Handler = (req: unknown, res: { json(body: unknown): void }) => unknown;
interface ExpressApp {
  use(handler: unknown): void;
  post(path: string, handler: Handler): void;
  listen(port: number, host: string): import('node:http').Server;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const express = require('express') as { (): ExpressApp; json(): unknown };

describe('frames of a framework', () => {
  it('a leak in an Express handler names the handler, and prints no framework frame', async () => {
    const pool = new t.pg.Pool({ connectionString: server.current.url, max: 2 });
    setPoolName(pool, 'express-app');
    const held: PoolClient[] = [];
    const app = express();
    app.use(express.json());
    app.post('/orders', async (_req: unknown, res: { json(body: unknown): void }) => {
      held.push(await pool.connect()); // SITE:expressHandler
      res.json({ ok: true });
    });
    const http = app.listen(0, '127.0.0.1');
    await new Promise((r) => http.once('listening', r));
    try {
      const { port } = http.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":1}' });
      assert.equal(res.status, 200);
      await eventually(() => logs.warnings().some((w) => w.includes('express-app')), 3000, 'leak report');
      const warning = logs.warnings().find((w) => w.includes('express-app'))!;
      const frames = warning.split('\n').filter((l) => l.trim().startsWith('at '));
      assert.ok(frames[0]!.includes(siteOf(__filename, 'expressHandler')), warning);
      assert.deepEqual(frames.filter((f) => /node_modules|node:/.test(f)), [], `no framework or Node frame: ${warning}`);
      if (process.env.PRINT_REPORTS) console.log(warning); // for docs/finding-leaks.md
    } finally {
      for (const c of held) c.release();
      http.close();
      await pool.end();
    }
  });
});
