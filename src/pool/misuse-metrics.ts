// Names of the leak and misuse instruments. They are fixed by docs/metrics.md (alerts and
// dashboards are written against them), so they live in one place.
export const MISUSE_METRIC = {
  leaked: 'pg_pool.checkout.leaked',
  leakDetections: 'pg_pool.checkout.leak_detections',
  leakReturns: 'pg_pool.checkout.leak_returns',
  oldestAge: 'pg_pool.checkout.oldest_age',
  releasedInTransaction: 'pg_pool.checkout.released_in_transaction',
  pools: 'pg_pool.pools',
  poolsCreated: 'pg_pool.pools.created',
} as const;

/** Values of the `transaction_status` attribute of pg_pool.checkout.released_in_transaction. */
export type TransactionStatusValue = 'in_transaction' | 'failed_transaction';
