// Leak and misuse detection features (issue 3): leaked checkouts, releases inside a transaction,
// pool-per-request, pool configuration advice.
import type { Feature, FeatureContext } from '../feature';

export function createMisuseFeatures(_ctx: FeatureContext): Feature[] {
  return [];
}
