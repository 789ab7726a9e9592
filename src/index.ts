export { PgPoolInstrumentation } from './instrumentation';
export type { PgPoolInstrumentationConfig, PgPoolOtelSettings, ReleaseInTransactionAction } from './settings';
export { setPoolName } from './pool/pool-identity';
export { METRIC, METRICS, prometheusName, type MetricDef } from './telemetry/catalogue';
export type { MetricProducerOptions } from './telemetry/producer';
export { markLongLived } from './leaks/long-lived';
export { instrumentPg } from './instrument-pg';
