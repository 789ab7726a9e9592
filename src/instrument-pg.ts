// instrumentPg(pg): for apps whose bundler inlined pg, so no module named `pg` was ever required
// for the preload's hook to see. The running instrumentation registers itself under a registered
// symbol on globalThis, so a copy of this package bundled into the app finds the preload's (or the
// app's own PgPoolInstrumentation) instead of starting a second one.
import { warnOnce } from './diag';

/** What one enabled instrumentation offers to every copy of the package in the thread. */
export interface RunningInstrumentation {
  /** Patches a pg-like module object (pg, or a package with node-postgres classes inside); false if it has none. */
  instrument(module: unknown): boolean;
}

const KEY = Symbol.for('pg-pool-otel.instrumentations');
const holder = globalThis as { [KEY]?: RunningInstrumentation[] };

/** Called by an instrumentation on enable(): the newest enabled one serves instrumentPg(). */
export function registerRunning(running: RunningInstrumentation): void {
  unregisterRunning(running);
  (holder[KEY] ??= []).push(running);
}

/** On disable(): the one enabled before it, if still enabled, serves instead. */
export function unregisterRunning(running: RunningInstrumentation): void {
  const list = holder[KEY];
  const i = list ? list.indexOf(running) : -1;
  if (i >= 0) list!.splice(i, 1);
}

/**
 * Applies the running instrumentation to the pg module object your app uses, for bundled apps
 * (esbuild, webpack, rolldown) that inline pg: `import pg from 'pg'; instrumentPg(pg);` before the
 * first pool is created. The same patching as the preload's hook: pools, clients, and the native
 * client if the app already loaded it. Calling it again, or on a module the hook already patched,
 * does nothing. Also accepts `@neondatabase/serverless` when your bundler inlined that. Returns
 * whether an instrumentation was running to apply.
 */
export function instrumentPg(pg: unknown): boolean {
  const list = holder[KEY];
  const running = list?.[list.length - 1];
  if (!running) {
    warnOnce(
      'instrumentPg:none',
      'instrumentPg() was called but no pg-pool-otel instrumentation is running, so pg is not instrumented: ' +
        'start the process with `node --require pg-pool-otel/register`, or create and enable a ' +
        'PgPoolInstrumentation before calling instrumentPg().'
    );
    return false;
  }
  try {
    if (running.instrument(pg)) return true;
  } catch {
    // the instrumentation reports its own faults; nothing of it may reach the app
    return false;
  }
  warnOnce('instrumentPg:not-pg', 'instrumentPg() was given something that is not the pg module (no Pool or Client class): nothing was instrumented.');
  return false;
}
