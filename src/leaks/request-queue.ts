// The queued checkout requests of one pool that the exhaustion report follows, in request order.
// A storm queues every request: following one must cost a push and a field write, not two hash
// operations and a move between sets (a Set of thousands, emptied and refilled, also churns its
// tables). Requests are answered mostly in order, so answered ones are dropped from the front;
// one answered out of order is marked and dropped when the front reaches it.
import type { CheckoutRequest } from '../pool/checkout-request';

/** Where a request stands (CheckoutRequest.followed, written only here). */
export const NOT_FOLLOWED = 0;
export const WAITING = 1;
/** Past the slow-wait setting and still waiting. */
export const OVERDUE = 2;
const DONE = 3;

/** Dropped requests are compacted away once they are this many and half of the array. */
const COMPACT_AT = 1024;

export class RequestQueue {
  private items: CheckoutRequest[] = [];
  /** Index of the first request not known to be done. */
  private head = 0;
  /** Index from which requests may still be WAITING: before it, all are OVERDUE or done. */
  private next = 0;
  /** Requests followed now (WAITING or OVERDUE). */
  size = 0;

  push(request: CheckoutRequest): void {
    request.followed = WAITING;
    this.items.push(request);
    this.size++;
  }

  /** Stops following `request` (answered, failed): returns where it stood (NOT_FOLLOWED if it was not followed). */
  settle(request: CheckoutRequest): number {
    const was = request.followed;
    if (was !== WAITING && was !== OVERDUE) return NOT_FOLLOWED;
    request.followed = DONE;
    this.size--;
    this.trim();
    return was;
  }

  /** The oldest request still WAITING, if any. */
  firstWaiting(): CheckoutRequest | undefined {
    const items = this.items;
    let i = Math.max(this.next, this.head);
    while (i < items.length && items[i]!.followed !== WAITING) i++;
    this.next = i;
    return items[i];
  }

  /** The request firstWaiting() returned is past the setting. */
  markOverdue(request: CheckoutRequest): void {
    request.followed = OVERDUE;
    this.next++;
  }

  /** Follows nothing any more (the pool ended: its queued requests are never answered). */
  clear(): void {
    for (let i = this.head; i < this.items.length; i++) this.items[i]!.followed = DONE;
    this.items = [];
    this.head = this.next = this.size = 0;
  }

  private trim(): void {
    const items = this.items;
    let head = this.head;
    while (head < items.length && items[head]!.followed === DONE) head++;
    if (head === items.length) {
      items.length = 0;
      head = 0;
      this.next = 0;
    } else if (head >= COMPACT_AT && head * 2 >= items.length) {
      items.splice(0, head);
      this.next = Math.max(0, this.next - head);
      head = 0;
    }
    this.head = head;
  }
}
