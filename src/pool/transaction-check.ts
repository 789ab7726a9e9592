// Releases inside an open transaction: the pool hands that client, transaction and all, to the
// next borrower. Counted by status and logged once per acquisition site; with
// releaseInTransaction 'destroy' the client is closed instead of reused.
import type { Counter, Meter } from '@opentelemetry/api';
import type { Feature, FeatureContext } from '../feature';
import { log, reportInternalError } from '../diag';
import type { PgClient } from '../pg-types';
import type { Checkout } from './checkout';
import type { PoolState } from './pool-state';
import { applicationFrames, frameLocation, takenAt } from './leak-report';
import { MISUSE_METRIC, type TransactionStatusValue } from './misuse-metrics';

/** Distinct acquisition sites logged at most; past this, releases are still counted. */
const MAX_LOGGED_SITES = 100;

/** pg's Client sets readyForQuery false while a statement awaits the server's ReadyForQuery. */
type InFlight = PgClient & { readyForQuery?: boolean };

const STATUS: Record<string, TransactionStatusValue | undefined> = { T: 'in_transaction', E: 'failed_transaction' };

export class TransactionCheck implements Feature {
  /** ReadyForQuery status byte per client, for pg releases without getTransactionStatus() (< 8.21). */
  private readonly protocolStatus = new WeakMap<PgClient, string>();
  private readonly loggedSites = new Set<string>();
  private counter: Counter | undefined;

  constructor(private readonly ctx: FeatureContext) {}

  useMeter(meter: Meter): void {
    this.counter = meter.createCounter(MISUSE_METRIC.releasedInTransaction, {
      unit: '{checkout}',
      description: 'Clients released to the pool inside an open (T) or failed (E) transaction.',
    });
  }

  clientConnected(_state: PoolState, client: PgClient): void {
    if (typeof client.getTransactionStatus === 'function') return;
    // The native client has no `.connection`: no status, nothing counted.
    const connection = client.connection;
    if (!connection || typeof connection.on !== 'function') return;
    connection.on('readyForQuery', (msg: { status?: unknown } | undefined) => {
      if (typeof msg?.status === 'string') this.protocolStatus.set(client, msg.status);
    });
  }

  released(state: PoolState, client: PgClient, checkout: Checkout | undefined, err: unknown): void {
    // release(err), a dead connection or client.end(): the pool closes the client anyway, so no
    // one inherits the transaction (release(err) is the documented way to discard a client).
    if (err || client._queryable === false || client._ending) return;
    const connection = client.connection;
    const inFlight = (client as InFlight).readyForQuery === false && typeof connection?.once === 'function';
    const raw = typeof client.getTransactionStatus === 'function' ? client.getTransactionStatus() : this.protocolStatus.get(client);
    if (!inFlight && !(raw && STATUS[raw])) return; // the usual release: idle, nothing to do
    const destroy = this.ctx.settings().releaseInTransaction === 'destroy';
    // A rejected statement settles before the server's ReadyForQuery arrives, so a release right
    // after one still sees the status from before it: judge on that ReadyForQuery instead. The
    // 'destroy' decision cannot wait (pg-pool decides synchronously), so it uses the status now.
    if (inFlight && !destroy) {
      connection!.once('readyForQuery', (msg: { status?: unknown } | undefined) => {
        try {
          if (typeof msg?.status === 'string') this.judge(state, client, checkout, msg.status, false);
        } catch (e) {
          reportInternalError('release in transaction check', e);
        }
      });
      return;
    }
    if (raw) this.judge(state, client, checkout, raw, destroy);
  }

  private judge(state: PoolState, client: PgClient, checkout: Checkout | undefined, raw: string, destroy: boolean): void {
    const status = STATUS[raw];
    if (!status) return;
    const pool = state.pool;
    const attributes = pool && !state.ended ? this.ctx.pools.attributesOf(state, pool) : state.attributes;
    this.counter?.add(1, { ...attributes, transaction_status: status });
    if (destroy) {
      // pg-pool tests client._ending right after emitting 'release' and then removes the client
      // (ending it itself) instead of putting it back; the server rolls the transaction back when
      // the connection closes. It counts as closed with reason released_with_error: what
      // release(err) would have done.
      client._ending = true;
      state.pendingClose.set(client, 'released_with_error');
    }
    this.logOnce(state, checkout, raw, status, destroy);
  }

  private logOnce(state: PoolState, checkout: Checkout | undefined, raw: string, status: TransactionStatusValue, destroyed: boolean): void {
    if (this.loggedSites.size >= MAX_LOGGED_SITES) return;
    const frames = applicationFrames(checkout?.site);
    const key = `${state.name}|${frames.length ? frameLocation(frames[0]) : '?'}|${status}`;
    if (this.loggedSites.has(key)) return;
    this.loggedSites.add(key);
    const outcome = destroyed
      ? 'the client was closed instead of reused (PG_POOL_OTEL_RELEASE_IN_TRANSACTION=destroy)'
      : 'the next checkout inherits that transaction';
    log().warn(
      `client released inside a transaction (status ${raw}: ${status}): pool "${state.name}"; ${outcome}. ` +
        `COMMIT or ROLLBACK before release(), or call release(err) to discard the client. ` +
        `Logged once per acquisition site. Taken at:${takenAt(checkout?.site, frames)}`
    );
  }
}
