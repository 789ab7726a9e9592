// Metric names as the generator writes them in PromQL, derived from the one catalogue
// (src/telemetry/catalogue.ts): a renamed metric changes the dashboards and alerts with it.
import { METRICS, prometheusName, type MetricKey } from '../telemetry/catalogue';

/** The scraped name of a gauge or counter (counters end in `_total`). */
export const PROM = Object.fromEntries(Object.entries(METRICS).map(([k, d]) => [k, prometheusName(d)])) as Record<MetricKey, string>;

/** The `_bucket`, `_count` and `_sum` series of a histogram. */
export const bucket = (k: MetricKey): string => `${PROM[k]}_bucket`;
export const count = (k: MetricKey): string => `${PROM[k]}_count`;
export const sum = (k: MetricKey): string => `${PROM[k]}_sum`;
