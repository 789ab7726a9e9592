// `node --require pg-pool-otel/register app.js`: patches pg and pg-pool and starts telemetry as
// the OTEL_* and PG_POOL_OTEL_* variables say. Nothing here may stop the application starting.
import * as workerThreads from 'node:worker_threads';
import { reportInternalError } from './diag';
import type { RunningTelemetry } from './preload/sdk';

const KEY = Symbol.for('pg-pool-otel.running');
const holder = globalThis as { [KEY]?: RunningTelemetry | null };

/**
 * Node also runs --require preloads in the thread that runs module customization hooks
 * (`--import tsx`, `--loader ...`). The app's code never runs there, and a second copy of the
 * package would try to bind the metrics port: the preload does nothing in that thread.
 */
function inModuleHooksThread(): boolean {
  const wt = workerThreads as typeof workerThreads & { isInternalThread?: boolean };
  if (typeof wt.isInternalThread === 'boolean') return wt.isInternalThread;
  // Node before 22.14 has no isInternalThread: the hooks thread is the one worker without a parent port.
  return !wt.isMainThread && wt.parentPort === null;
}

// Both --require and --import may be given (e.g. through NODE_OPTIONS): start once.
if (holder[KEY] === undefined && !inModuleHooksThread()) {
  holder[KEY] = null;
  try {
    // Loaded here rather than imported: the hooks thread must not even load the SDK.
    const { shutdownOnExit, startTelemetry } = require('./preload/sdk') as typeof import('./preload/sdk');
    const running = startTelemetry();
    if (running) {
      holder[KEY] = running;
      shutdownOnExit(running);
    }
  } catch (e) {
    reportInternalError('preload start', e);
  }
}

/** The telemetry the preload started, if any: for tests and for apps that want to flush early. */
export function running(): RunningTelemetry | undefined {
  return holder[KEY] ?? undefined;
}
