// Leak and misuse detection features (issue 3): leaked checkouts, releases inside a transaction,
// pool-per-request, pool configuration advice; who holds an exhausted pool (issue 14).
import type { Feature, FeatureContext } from '../feature';
import { ConfigAdvice } from './config-advice';
import { ExhaustionReport } from './exhaustion-report';
import { LeakDetector } from './leak-detector';
import { PoolCensus } from './pool-census';
import { TransactionCheck } from './transaction-check';

export function createMisuseFeatures(ctx: FeatureContext): Feature[] {
  return [new LeakDetector(ctx), new TransactionCheck(ctx), new PoolCensus(ctx), new ConfigAdvice(ctx), new ExhaustionReport(ctx)];
}
