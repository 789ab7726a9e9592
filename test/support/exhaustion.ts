// The exhaustion report's rate limit, reset between tests: every test reports on pools of its own,
// and only the process-wide budget would carry over from one test to the next.
import type { Harness } from './telemetry';
import { ExhaustionReport } from '../../src/leaks/exhaustion-report';
import { ReportLimiter } from '../../src/leaks/report-limiter';

/** Gives the instrumentation's exhaustion report a fresh budget with the same limits. */
export function freshReportBudget(t: Harness): void {
  const feature = t.instrumentation.core.features.find((f): f is ExhaustionReport => f instanceof ExhaustionReport)!;
  feature.limiter = new ReportLimiter(feature.limiter.perKeyMs, feature.limiter.burst, feature.limiter.refillMs);
}
