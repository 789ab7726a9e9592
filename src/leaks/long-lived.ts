// The documented way to keep a client that is held on purpose (LISTEN/NOTIFY, logical
// replication, an advisory migration lock) out of leak reports, the leak gauges and the oldest
// checkout age.
import { reportInternalError } from '../diag';
import { checkoutSources } from './checkout-sources';

/**
 * Marks the current checkout of `client` (from `pool.connect()`) as long-lived on purpose: it is
 * never reported as a leak. The mark ends with the checkout: once released, the client is an
 * ordinary pooled client again. Returns false when no instrumentation holds a checkout of
 * `client` (not from an instrumented pool, or already released).
 */
export function markLongLived(client: object, longLived = true): boolean {
  let found = false;
  for (const source of checkoutSources()) {
    try {
      if (source.markLongLived(client, longLived)) found = true;
    } catch (e) {
      reportInternalError('markLongLived', e);
    }
  }
  return found;
}
