// The exhaustion report's queue of followed requests (src/leaks/request-queue.ts): answered in
// order or out of it, overdue ones skipped by the slow-wait check, compacted as it drains. The
// report's own behaviour on a real server is in exhaustion-report.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CheckoutRequest } from '../src/pool/checkout-request';
import type { TrackedPool } from '../src/pool/tracked-pool';
import { NOT_FOLLOWED, OVERDUE, RequestQueue, WAITING } from '../src/leaks/request-queue';

const pool = {} as TrackedPool;
const requests = (n: number) => Array.from({ length: n }, () => new CheckoutRequest(pool, undefined, undefined));

describe('the exhaustion report\u2019s request queue', () => {
  it('follows requests in order, answered in order or out of it', () => {
    const q = new RequestQueue();
    const [a, b, c, d] = requests(4);
    for (const r of [a!, b!, c!]) q.push(r);
    assert.equal(q.size, 3);
    assert.equal(q.firstWaiting(), a);
    // b answered first (out of order): a is still the oldest waiting.
    assert.equal(q.settle(b!), WAITING);
    assert.equal(q.firstWaiting(), a);
    assert.equal(q.settle(b!), NOT_FOLLOWED, 'settled once');
    assert.equal(q.settle(d!), NOT_FOLLOWED, 'never queued');
    // a goes overdue: the next waiting one is c, skipping the answered b.
    q.markOverdue(a!);
    assert.equal(q.firstWaiting(), c);
    assert.equal(q.settle(a!), OVERDUE);
    assert.equal(q.settle(c!), WAITING);
    assert.equal(q.size, 0);
    assert.equal(q.firstWaiting(), undefined);
  });

  it('a cleared queue follows nothing, and its requests are not followed any more', () => {
    const q = new RequestQueue();
    const rs = requests(3);
    for (const r of rs) q.push(r);
    q.clear();
    assert.equal(q.size, 0);
    assert.equal(q.firstWaiting(), undefined);
    for (const r of rs) assert.equal(q.settle(r), NOT_FOLLOWED);
  });

  it('drains a storm: thousands queued, answered in order with some out of it, the oldest waiting always right', () => {
    const q = new RequestQueue();
    const rs = requests(5000);
    for (const r of rs) q.push(r);
    // Every third request is answered early; the rest in order.
    for (let i = 2; i < rs.length; i += 3) assert.equal(q.settle(rs[i]!), WAITING);
    for (let i = 0; i < rs.length; i++) {
      if (i % 3 === 2) continue;
      assert.equal(q.firstWaiting(), rs[i], `oldest waiting at ${i}`);
      if (i % 5 === 0) q.markOverdue(rs[i]!);
      assert.equal(q.settle(rs[i]!), i % 5 === 0 ? OVERDUE : WAITING);
    }
    assert.equal(q.size, 0);
    assert.equal(q.firstWaiting(), undefined);
    // Refilled after draining: follows from the start again.
    const [x] = requests(1);
    q.push(x!);
    assert.equal(q.firstWaiting(), x);
  });
});
