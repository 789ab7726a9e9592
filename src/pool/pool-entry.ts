// Everything known about one pooled connection, in one place (as HikariCP's PoolEntry): its pool,
// when it was opened, the current checkout and where it was taken, whether it was reported as a
// leak, why the pool is about to close it. Found from the client in one property read. Its state
// changes are its own methods (checkOut, checkIn, markClosing, close...): features ask, the entry
// decides, and each field has one writer.
import type { Span, SpanContext } from '@opentelemetry/api';
import type { PgClient } from '../pg/pg-types';
import type { CloseReason } from './close-reason';
import type { TrackedPool } from './tracked-pool';
import type { StackHolder } from './checkout-site';
import { PoolQueryCall, type CheckoutRequest } from './checkout-request';

// Module-private: each copy of the package keeps its own entries on a client.
const ENTRY = Symbol('pg-pool-otel.entry');
type WithEntry = { [ENTRY]?: PoolEntry };

/**
 * Which close reason wins when more than one is decided for the same connection. A release decides
 * anew (closeReasonOnRelease, or none when the pool keeps it); after that a reason decided later
 * replaces the current one only if it ranks at least as high: the pool's idle 'error' (the
 * connection is dead) over a release in a transaction the pool is told to discard, over the
 * release's own reasons.
 */
const CLOSE_RANK: Readonly<Partial<Record<CloseReason, number>>> = { released_with_error: 1, idle_error: 2 };

export class PoolEntry {
  /** performance.now() when the connection started opening; undefined once open. */
  connectStartedAt: number | undefined;
  /** performance.now() when the checkout was requested and when the connection was handed over. */
  requestedAt = 0;
  acquiredAt = 0;
  /** Where the checkout was taken: a captured stack, or the pool.query() call that took it. */
  site: StackHolder | undefined;
  /** The site as the holders view groups it (src/leaks/holders.ts), formatted once per checkout, when first asked. */
  siteKey: string | undefined;
  /** The span active at checkout (its context always; the span itself when it was recording). */
  spanContext: SpanContext | undefined;
  span: Span | undefined;
  /** Set once the leak detector has reported this checkout. */
  reportedAt: number | undefined;
  /** Marked long-lived on purpose (LISTEN/NOTIFY, replication, a migration lock): never reported. */
  longLived = false;
  /** The pool.query() call whose checkout this is, until its query starts. */
  poolQuery: PoolQueryCall | undefined;
  /** Why the pool will close this connection (see CLOSE_RANK), read when it is removed. */
  closeReason: CloseReason | undefined;
  // The transaction check's own state (src/leaks/transaction-check.ts is their one writer):
  /** Where the checkout that released this client inside a transaction was taken, while that transaction stays open. */
  leftOpenBy: StackHolder | undefined;
  /** Set while the current checkout holds a transaction it inherited; stops watching for its end. */
  inherited: (() => void) | undefined;
  /** The last ReadyForQuery's status byte, for pg releases without getTransactionStatus() (< 8.21): readyForQuery() writes it. */
  protocolStatus: string | undefined;
  /** Links of the pool's CheckoutList (its one writer): listed while checked out. */
  prev: PoolEntry | undefined;
  next: PoolEntry | undefined;
  listed = false;

  constructor(
    readonly client: PgClient,
    readonly pool: TrackedPool
  ) {
    (client as PgClient & WithEntry)[ENTRY] = this;
  }

  static of(client: object | null | undefined): PoolEntry | undefined {
    return client ? (client as WithEntry)[ENTRY] : undefined;
  }

  /** The client's entry, made for `pool` if the client has none (one pg-pool created before it was tracked). */
  static for(client: PgClient, pool: TrackedPool): PoolEntry {
    return (client as PgClient & WithEntry)[ENTRY] ?? new PoolEntry(client, pool);
  }

  /** The current checkout, if any: a checked-out entry is the one listed in its pool's checkouts. */
  get checkedOut(): boolean {
    return this.listed;
  }

  /** The pool started opening the connection. */
  connecting(now: number): void {
    this.connectStartedAt = now;
  }

  /** The connection is open: when it started opening, if that was seen (once). */
  connected(): number | undefined {
    const started = this.connectStartedAt;
    this.connectStartedAt = undefined;
    return started;
  }

  /** Handed out at `now` for `request`: a new checkout, listed last in its pool's checkouts. */
  checkOut(request: CheckoutRequest, now: number): void {
    this.requestedAt = request.requestedAt;
    this.acquiredAt = now;
    this.site = request.site;
    this.siteKey = undefined;
    const span = request.span;
    this.spanContext = span?.spanContext();
    this.span = span?.isRecording() ? span : undefined;
    this.reportedAt = undefined;
    this.longLived = false;
    this.poolQuery = request instanceof PoolQueryCall ? request : undefined;
    this.pool.checkedOut.add(this);
  }

  /**
   * The pool took the connection back, deciding `closeReason` (undefined: it keeps it). Returns
   * whether it was checked out (a pool's own releases are not).
   */
  checkIn(closeReason: CloseReason | undefined): boolean {
    const was = this.pool.checkedOut.delete(this);
    this.poolQuery = undefined;
    this.closeReason = closeReason;
    return was;
  }

  /** A reason decided after the release: kept if it ranks at least as high as the current one (CLOSE_RANK). */
  markClosing(reason: CloseReason): void {
    const current = this.closeReason;
    if (current === undefined || (CLOSE_RANK[reason] ?? 0) >= (CLOSE_RANK[current] ?? 0)) this.closeReason = reason;
  }

  /** The pool closed the connection: forgotten, and the reason it was closed for (`fallback` when none was decided). */
  close(fallback: CloseReason): CloseReason {
    this.pool.checkedOut.delete(this);
    this.detach();
    return this.closeReason ?? fallback;
  }

  /** The pool.query() call whose checkout this is, taken as its query starts. */
  takePoolQuery(): PoolQueryCall | undefined {
    const call = this.poolQuery;
    if (call) this.poolQuery = undefined;
    return call;
  }

  /** The server's ReadyForQuery said the connection's transaction status is `status` (I, T or E). */
  readyForQuery(status: string): void {
    this.protocolStatus = status;
  }

  /** The leak detector reported this checkout at `now` (undefined: a reported checkout came back). */
  reported(now: number | undefined): void {
    this.reportedAt = now;
  }

  markLongLived(longLived: boolean): void {
    this.longLived = longLived;
  }

  /** The site's key for this checkout, formatted by the holders view. */
  keySite(key: string): void {
    this.siteKey = key;
  }

  /** Forgets the connection (it was closed): the client object no longer points here. */
  detach(): void {
    const c = this.client as PgClient & WithEntry;
    if (c[ENTRY] === this) delete c[ENTRY];
  }
}
