// One benchmark run in its own process: install a configuration, then require pg, run one
// workload and print `RESULT <json>` on stdout. Started by run.ts as plain JavaScript (transpiled
// into bench/.out/) so that no TypeScript loader or source-map support sits in the measured path.
import { setUp, type ConfigName, type MetricsPath, type SpanCounts } from './configurations';
import { WORKLOAD_ENV, countReports, runHeap, runSoak, runThroughput, type HeapResult, type SoakResult, type ThroughputResult, type WorkloadName } from './workloads';

export interface Job {
  /** names this run at the receiver: spans go to `${receiverUrl}/${id}/v1/traces` */
  id: string;
  config: ConfigName;
  task: WorkloadName | 'heap' | 'soak';
  repoRoot: string;
  db: { host: string; port: number; user: string; password: string; database: string };
  receiverUrl: string;
  concurrency: number;
  poolMax: number;
  warmupMs: number;
  durationMs: number;
  metricIntervalMs: number;
  heapClients: number;
  soakQueries: number;
}

export type WorkerResult = (ThroughputResult | HeapResult | SoakResult) & {
  /** span configurations only: counted in the worker, over the whole run */
  spans?: SpanCounts;
  /** how the ours-* metrics reached the reader */
  metricsPath: MetricsPath;
  /** metric names with data points at the end of the run */
  metrics: string[];
};

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '') as Job;
  // Workload settings (the storm's slow-wait limit) are read by the package when it is set up.
  if (job.task !== 'heap' && job.task !== 'soak') for (const [k, v] of Object.entries(WORKLOAD_ENV[job.task] ?? {})) process.env[k] ??= v;
  const reports = countReports();
  const active = setUp(job.config, {
    repoRoot: job.repoRoot,
    metricIntervalMs: job.metricIntervalMs,
    tracesUrl: `${job.receiverUrl}/${job.id}/v1/traces`,
  });
  // Only now, after the instrumentation is registered, is pg loaded.
  const pg = require('pg') as typeof import('pg');
  const makePool = (max: number) => new pg.Pool({ ...job.db, max });

  let result: ThroughputResult | HeapResult | SoakResult;
  if (job.task === 'heap') {
    result = await runHeap(makePool, job.heapClients, 7, () => active.flush());
  } else {
    const pool = makePool(job.poolMax);
    result =
      job.task === 'soak'
        ? await runSoak(pool, job.soakQueries, job.concurrency, () => active.flush())
        : await runThroughput(pool, job.task, job.concurrency, job.warmupMs, job.durationMs);
    await pool.end();
    if (result.kind === 'throughput') result.reports = reports();
  }
  const metrics = await active.collectMetricNames();
  // Shutting down exports every span still queued; the receiver has counted them when it returns.
  await active.shutdown();
  const spans = active.spanCounts();
  const out: WorkerResult = { ...result, ...(spans ? { spans } : {}), metricsPath: active.metricsPath, metrics };
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  }
);
