// `--pin`: the measured worker on one CPU and everything it talks to (PostgreSQL, the OTLP receiver)
// on another, when the machine has two or more and `taskset` (util-linux) is there. Pinned, bare
// pg runs about twice as fast on a two-core machine (no migrations between the cores as the
// worker and the backends wake each other), which suits quick A/B runs of the metrics-only
// configurations. It is not the default: on two cores the receiver then shares one core with
// PostgreSQL and falls behind the faster worker, so the span configurations lose spans at the
// batch processor's queue (11,063 of 3.1 million in a full run, against none unpinned), and the
// round-to-round spread was no narrower (bare `query` 25.6k-43.5k queries/s over five rounds).
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

export interface Pinning {
  /** how the run was pinned, for the report */
  readonly description: string;
  /** The command and arguments that start `argv` on the worker's CPU. */
  worker(argv: string[]): [string, string[]];
  /** Moves a running process, its threads and its existing children onto the server's CPU. */
  toServerCpu(pid: number | undefined): void;
}

const WORKER_CPU = 1;
const SERVER_CPU = 0;

const UNPINNED = (why: string): Pinning => ({
  description: `not pinned (${why})`,
  worker: (argv) => [argv[0]!, argv.slice(1)],
  toServerCpu: () => {},
});

export function pinning(enabled: boolean): Pinning {
  if (!enabled) return UNPINNED('no --pin');
  if (availableParallelism() < 2) return UNPINNED('one CPU');
  if (spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status !== 0) return UNPINNED('no taskset');
  return {
    description: `worker on CPU ${WORKER_CPU}; PostgreSQL and the OTLP receiver on CPU ${SERVER_CPU} (taskset)`,
    worker: (argv) => ['taskset', ['-c', String(WORKER_CPU), ...argv]],
    toServerCpu(pid) {
      if (pid === undefined) return;
      // Backends forked later inherit the postmaster's CPU; those running now are moved with it.
      const children = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).stdout ?? '';
      for (const p of [String(pid), ...children.split(/\s+/).filter(Boolean)]) {
        const r = spawnSync('taskset', ['-a', '-p', '-c', String(SERVER_CPU), p], { stdio: 'ignore' });
        if (r.status !== 0) throw new Error(`taskset could not pin pid ${p}`);
      }
    },
  };
}
