// Server headroom features (issue 4): max_connections and reserved slots, pg_stat_activity sampling.
import type { Feature, FeatureContext } from '../feature';

export function createServerFeatures(_ctx: FeatureContext): Feature[] {
  return [];
}
