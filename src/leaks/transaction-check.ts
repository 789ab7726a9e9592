// Releases inside an open transaction: the pool hands that client, transaction and all, to the
// next borrower. Counted by status and logged once per acquisition site; with
// releaseInTransaction 'destroy' the client is closed instead of reused. Only the checkout that
// left the transaction open is blamed: a later borrower that receives it and releases it still
// open (it never saw the transaction end) is neither counted nor logged.
import type { Feature, FeatureContext } from '../feature';
import { log, reportInternalError } from '../diag';
import type { PgClient } from '../pg/pg-types';
import type { PoolEntry } from '../pool/pool-entry';
import type { StackHolder } from '../pool/checkout-site';
import type { TrackedPool } from '../pool/tracked-pool';
import { METRICS } from '../telemetry/catalogue';
import { applicationFrames, frameLocation, takenAt } from './leak-report';

/** Values of the `transaction_status` attribute of pg_pool.checkout.released_in_transaction. */
export type TransactionStatusValue = 'in_transaction' | 'failed_transaction';

/** Distinct acquisition sites logged at most; past this, releases are still counted. */
const MAX_LOGGED_SITES = 100;

/** pg's Client sets readyForQuery false while a statement awaits the server's ReadyForQuery. */
type InFlight = PgClient & { readyForQuery?: boolean };

const STATUS: Record<string, TransactionStatusValue | undefined> = { T: 'in_transaction', E: 'failed_transaction' };

export class TransactionCheck implements Feature {
  private readonly loggedSites = new Set<string>();

  constructor(private readonly ctx: FeatureContext) {}

  clientConnected(entry: PoolEntry): void {
    const client = entry.client;
    // pg >= 8.21 keeps the status; on older pg the Client hook has told the entry the status of the
    // connection's first ReadyForQuery by now (hooks/pg-client.ts), unless the client connected
    // through a prototype that was not patched: only then is a listener added.
    if (typeof client.getTransactionStatus === 'function' || entry.protocolStatus !== undefined) return;
    // The native client has no `.connection`: no status, nothing counted.
    const connection = client.connection;
    if (!connection || typeof connection.prependListener !== 'function') return;
    // Ahead of the client's own listener, which settles the query (and runs a callback that may release).
    connection.prependListener('readyForQuery', (msg: { status?: unknown } | undefined) => {
      if (typeof msg?.status === 'string') entry.readyForQuery(msg.status);
    });
  }

  checkedOut(entry: PoolEntry): void {
    // The hot path: one field read unless the last release left a transaction open.
    if (entry.leftOpenBy === undefined) return;
    const raw = statusOf(entry);
    if (!(raw && STATUS[raw])) {
      entry.leftOpenBy = undefined; // ended since (pg-pool's own ROLLBACK, a lost connection)
      return;
    }
    // This borrower inherits it until the server says the transaction ended (ReadyForQuery 'I').
    const connection = entry.client.connection;
    if (!connection || typeof connection.on !== 'function') {
      entry.inherited = () => {};
      return;
    }
    const onReady = (msg: { status?: unknown } | undefined) => {
      if (msg?.status !== 'I') return;
      entry.inherited?.();
      entry.leftOpenBy = undefined;
    };
    connection.on('readyForQuery', onReady);
    entry.inherited = () => {
      entry.inherited = undefined;
      connection.removeListener?.('readyForQuery', onReady);
    };
  }

  released(entry: PoolEntry, err: unknown): void {
    const victim = entry.inherited !== undefined;
    entry.inherited?.();
    const client = entry.client;
    // release(err), a dead connection or client.end(): the pool closes the client anyway, so no
    // one inherits the transaction (release(err) is the documented way to discard a client).
    if (err || client._queryable === false || client._ending) return;
    const connection = client.connection;
    const inFlight = (client as InFlight).readyForQuery === false && typeof connection?.once === 'function';
    const raw = statusOf(entry);
    if (!inFlight && !(raw && STATUS[raw])) {
      entry.leftOpenBy = undefined; // the usual release: idle, nothing to do
      return;
    }
    // The transaction this checkout inherited is still open: its leaving was counted at the release that left it.
    if (victim) return;
    const destroy = this.ctx.settings.releaseInTransaction === 'destroy' && entry.pool.kind.discardOnRelease !== undefined;
    // A rejected statement settles before the server's ReadyForQuery arrives, so a release right
    // after one still sees the status from before it: judge on that ReadyForQuery instead. The
    // 'destroy' decision cannot wait (the pool decides synchronously), so it uses the status now.
    // The site now: the entry may be checked out again before that ReadyForQuery arrives.
    const site = entry.site;
    if (inFlight && !destroy) {
      connection!.once('readyForQuery', (msg: { status?: unknown } | undefined) => {
        try {
          if (typeof msg?.status === 'string') this.judge(entry, site, msg.status, false);
        } catch (e) {
          reportInternalError('release in transaction check', e);
        }
      });
      return;
    }
    if (raw) this.judge(entry, site, raw, destroy);
  }

  private judge(entry: PoolEntry, site: StackHolder | undefined, raw: string, destroy: boolean): void {
    const status = STATUS[raw];
    if (!status) return;
    const pool = entry.pool;
    pool.series.lazyCounter(METRICS.releasedInTransaction, { transaction_status: status }).add();
    entry.leftOpenBy = site ?? {};
    if (destroy) {
      // The pool closes the client instead of putting it back; the server rolls the transaction
      // back when the connection closes. It counts as closed with reason released_with_error: what
      // release(err) would have done.
      pool.kind.discardOnRelease?.(entry.client);
      entry.markClosing('released_with_error');
    }
    this.logOnce(entry.pool, site, raw, status, destroy);
  }

  private logOnce(pool: TrackedPool, site: StackHolder | undefined, raw: string, status: TransactionStatusValue, destroyed: boolean): void {
    if (this.loggedSites.size >= MAX_LOGGED_SITES) return;
    const frames = applicationFrames(site);
    const key = `${pool.name}|${frames.length ? frameLocation(frames[0]!) : '?'}|${status}`;
    if (this.loggedSites.has(key)) return;
    this.loggedSites.add(key);
    const outcome = destroyed
      ? 'the client was closed instead of reused (PG_POOL_OTEL_RELEASE_IN_TRANSACTION=destroy)'
      : 'the next checkout inherits that transaction';
    log().warn(
      `client released inside a transaction (status ${raw}: ${status}): pool "${pool.name}"; ${outcome}. ` +
        `COMMIT or ROLLBACK before release(), or call release(err) to discard the client. ` +
        `Logged once per acquisition site. Taken at:${takenAt(site, frames, this.ctx.sites)}`
    );
  }
}

/** The client's transaction status byte: pg's own (>= 8.21), else the last ReadyForQuery's. */
function statusOf(entry: PoolEntry): string | undefined {
  const client = entry.client;
  return (typeof client.getTransactionStatus === 'function' ? client.getTransactionStatus() : entry.protocolStatus) ?? undefined;
}
