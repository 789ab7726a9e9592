// The oldest supported pair (pg 8.7.3, pg-pool 3.5.1: no 'release' event, no getTransactionStatus())
// and a middle pair (pg 8.11.3, pg-pool 3.6.1), each installed apart from the root in
// test/fixtures/pg-releases/<pair> (by .ci/run, or here when missing) and loaded after the
// instrumentation: a checkout released before the threshold is not a leak, a leaked one is
// reported and its return seen, use time is measured, a release inside a transaction is counted,
// also from the callback of the statement that opened or ended it.
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { instrument, eventually } from './support/telemetry';
import { usePostgres } from './support/server';
import { setPoolName } from '../src/index';
import { captureLog, siteOf } from './fixtures/leaks/capture';
import { byPool } from './support/pool-readings';
import { releasesFromCallbacks } from './support/transactions';

const t = instrument({ leakThresholdMs: 300, leakCheckIntervalMs: 20, configAdvice: false, poolBurstCount: 0 });
void t.instrumentation.settings; // settings install the stderr logger: replace it afterwards
const logs = captureLog();
const server = usePostgres();
after(() => t.shutdown());
afterEach(() => logs.clear());

const PAIRS = { oldest: { pg: '8.7.3', pgPool: '3.5.1' }, middle: { pg: '8.11.3', pgPool: '3.6.1' } };

/** The pair's pg, installed from its lockfile when missing. */
function loadPair(dir: string): typeof import('pg') {
  if (!existsSync(join(dir, 'node_modules', 'pg', 'package.json'))) {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const res = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit' });
    assert.equal(res.status, 0, `npm ci in ${dir} failed`);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(join(dir, 'node_modules', 'pg')) as typeof import('pg');
}
const version = (dir: string, name: string) => (JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

for (const [pair, want] of Object.entries(PAIRS)) {
  describe(`pg ${want.pg} with pg-pool ${want.pgPool}`, () => {
    const dir = join(__dirname, 'fixtures', 'pg-releases', pair);
    const pg = loadPair(dir);

    it('is the pair it claims to be, and a separate copy from the root one', () => {
      assert.equal(version(dir, 'pg'), want.pg);
      assert.equal(version(dir, 'pg-pool'), want.pgPool);
      assert.notEqual(pg.Pool, t.pg.Pool);
    });

    it('sees releases: no false leak, a real leak reported and its return seen, use time measured', async () => {
      const name = `releases-${pair}`;
      const p = new pg.Pool({ connectionString: server.current.url, max: 2 });
      setPoolName(p, name);
      const quick = await p.connect();
      await new Promise((r) => setTimeout(r, 100));
      quick.release(); // released within the threshold: never a leak
      const slow = await p.connect(); // SITE:releasesSlow
      await eventually(() => logs.warnings().length > 0, 3000, 'leak report');
      const warnings = logs.warnings();
      assert.equal(warnings.length, 1, warnings.join('\n---\n'));
      assert.ok(warnings[0]!.includes(siteOf(__filename, 'releasesSlow')), warnings[0]);
      assert.equal(await t.value('pg_pool.checkout.leaked', byPool(name)), 1);
      slow.release();
      await eventually(async () => (await t.value('pg_pool.checkout.leaked', byPool(name))) === 0, 2000, 'leaked gauge drops');
      assert.equal(await t.value('pg_pool.checkout.leak_returns', byPool(name)), 1);
      assert.match(logs.infos().join('\n'), new RegExp(`returned after \\d+\\.\\d s: pool "${name}"`));
      assert.equal((await t.histogram('db.client.connection.use_time', byPool(name)))?.count, 2);
      assert.equal(await t.value('db.client.connection.count', { ...byPool(name), 'db.client.connection.state': 'used' }), 0);
      await p.end();
    });

    it('counts a release inside a transaction once, and max_uses closes by their reason', async () => {
      const name = `tx-${pair}`;
      const p = new pg.Pool({ connectionString: server.current.url, max: 1, maxUses: 2 });
      setPoolName(p, name);
      const c = await p.connect();
      await c.query('BEGIN');
      c.release(); // first use: kept, transaction left open
      assert.equal(await t.value('pg_pool.checkout.released_in_transaction', { ...byPool(name), transaction_status: 'in_transaction' }), 1);
      await p.query('ROLLBACK'); // second use: pg-pool closes it (maxUses 2)
      await eventually(async () => (await t.value('pg_pool.connection.closed', { ...byPool(name), reason: 'max_uses' })) === 1, 2000, 'closed for max_uses');
      await p.end();
    });

    it("reads the status before pg settles the query: a release from COMMIT's callback is not counted, one from BEGIN's is", async () => {
      const name = `tx-callbacks-${pair}`;
      const p = new pg.Pool({ connectionString: server.current.url, max: 1 });
      setPoolName(p, name);
      const readings = await releasesFromCallbacks(p as never, () => t.value('pg_pool.checkout.released_in_transaction', { ...byPool(name), transaction_status: 'in_transaction' }));
      assert.deepEqual(readings, { afterCommit: undefined, afterBegin: 1 });
      await p.end();
    });
  });
}
