// Everything known about one pooled connection, in one place (as HikariCP's PoolEntry): its pool,
// when it was opened, the current checkout and where it was taken, whether it was reported as a
// leak, why the pool is about to close it. Found from the client in one property read.
import type { Span, SpanContext } from '@opentelemetry/api';
import type { PgClient } from '../pg/pg-types';
import type { CloseReason } from './close-reason';
import type { TrackedPool } from './tracked-pool';
import type { PoolQueryCall, StackHolder } from './checkout-site';

// Module-private: each copy of the package keeps its own entries on a client.
const ENTRY = Symbol('pg-pool-otel.entry');
type WithEntry = { [ENTRY]?: PoolEntry };

export class PoolEntry {
  /** performance.now() when the connection started opening; undefined once open. */
  connectStartedAt: number | undefined;
  /** The current checkout, if any. */
  checkedOut = false;
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
  /** Why the pool will close this connection, decided at release and read when it is removed. */
  closeReason: CloseReason | undefined;
  /** Where the checkout that released this client inside a transaction was taken, while that transaction stays open. */
  leftOpenBy: StackHolder | undefined;
  /** Set while the current checkout holds a transaction it inherited; stops watching for its end. */
  inherited: (() => void) | undefined;
  /** ReadyForQuery status byte, for pg releases without getTransactionStatus() (< 8.21). */
  protocolStatus: string | undefined;
  /** Links of the pool's CheckoutList. */
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

  /** Forgets the connection (it was closed): the client object no longer points here. */
  detach(): void {
    const c = this.client as PgClient & WithEntry;
    if (c[ENTRY] === this) delete c[ENTRY];
  }
}
