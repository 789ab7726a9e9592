// Leak and misuse detection features (issue 3): leaked checkouts, releases inside a transaction,
// pool-per-request, pool configuration advice.
import type { Feature, FeatureContext } from '../feature';
import { checkoutSources } from './checkout-sources';
import { ConfigAdvice } from './config-advice';
import { LeakDetector } from './leak-detector';
import { PoolCensus } from './pool-census';
import { TransactionCheck } from './transaction-check';

export function createMisuseFeatures(ctx: FeatureContext): Feature[] {
  const leaks = new LeakDetector(ctx);
  // Visible to markLongLived() and pg-pool-otel/testing until the instrumentation is disabled.
  checkoutSources().add(leaks);
  const unlist: Feature = { stop: () => void checkoutSources().delete(leaks) };
  return [leaks, new TransactionCheck(ctx), new PoolCensus(ctx), new ConfigAdvice(ctx), unlist];
}
