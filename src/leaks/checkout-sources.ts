// A process-wide list of the instrumentations' checkout bookkeeping, for markLongLived() and
// pg-pool-otel/testing. Kept on globalThis under a registered symbol so that it is shared by
// every copy of this package in the process (the preload's and the app's own), and so that the
// testing entry point never has to load the preload (which would start telemetry).
export interface OutstandingCheckout {
  /** db.client.connection.pool.name of the pool */
  pool: string;
  /** How long the client has been held, in milliseconds. */
  heldMs: number;
  /** Marked with markLongLived(): held on purpose. */
  longLived: boolean;
  /** Already reported by the leak detector. */
  reported: boolean;
  /** Trace id of the span active at checkout, if any. */
  traceId: string | undefined;
  /** Application frames of the acquisition stack, "at fn (file:line:col)", innermost first. */
  frames: string[];
  /** True when the acquisition stack was captured (PG_POOL_OTEL_CAPTURE_STACKS and leak detection on). */
  stackCaptured: boolean;
}

import type { PoolHolders } from './holders';

export type { HolderGroup, PoolHolders } from './holders';

export interface CheckoutSource {
  outstanding(): OutstandingCheckout[];
  /** Marks the current checkout of `client`; false when this source does not hold it. */
  markLongLived(client: object, longLived: boolean): boolean;
  /** Pools this source has seen since it started (optional: older copies lack it). */
  poolsSeen?(): number;
  /** Each pool with checkouts out, its holders grouped by site (optional: older copies lack it). */
  holders?(maxGroups: number): PoolHolders[];
}

const KEY = Symbol.for('pg-pool-otel.checkout-sources');
const holder = globalThis as { [KEY]?: Set<CheckoutSource> };

export function checkoutSources(): Set<CheckoutSource> {
  return (holder[KEY] ??= new Set());
}
