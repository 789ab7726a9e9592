export { PgPoolInstrumentation } from './instrumentation';
export type { PgPoolInstrumentationConfig, PgPoolOtelSettings, ReleaseInTransactionAction } from './config';
export { setPoolName } from './pool/pool-identity';
export { METRIC } from './telemetry/instruments';
export { markLongLived } from './pool/long-lived';
