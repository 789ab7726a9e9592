// `node --require pg-pool-otel/register app.js`: patches pg and pg-pool and starts telemetry as
// the OTEL_* and PG_POOL_OTEL_* variables say. Nothing here may stop the application starting.
import { reportInternalError } from './diag';
import { shutdownOnExit, startTelemetry, type RunningTelemetry } from './telemetry/sdk';

const KEY = Symbol.for('pg-pool-otel.running');
const holder = globalThis as { [KEY]?: RunningTelemetry | null };

// Both --require and --import may be given (e.g. through NODE_OPTIONS): start once.
if (holder[KEY] === undefined) {
  holder[KEY] = null;
  try {
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
