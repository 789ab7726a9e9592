// The package's own voice: one prefix, stderr by default, and "once" helpers so that a fault
// inside a hot path is reported a single time instead of flooding the host's logs.

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

const PREFIX = '[pg-pool-otel]';

function write(level: LogLevel, message: string): void {
  try {
    process.stderr.write(`${PREFIX} ${level.toUpperCase()} ${message}\n`);
  } catch {
    // stderr closed: nothing sensible left to do
  }
}

const LEVELS: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** A stderr logger that drops messages below `level`. */
export function stderrLogger(level: LogLevel = 'info'): Logger {
  const max = LEVELS[level];
  const at = (l: LogLevel) => (message: string) => {
    if (LEVELS[l] <= max) write(l, message);
  };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}

let current: Logger = stderrLogger();

export function setLogger(logger: Logger): void {
  current = logger;
}

export function log(): Logger {
  return current;
}

const said = new Set<string>();

/** Logs a message once per key for the life of the process. */
export function warnOnce(key: string, message: string): void {
  if (said.has(key)) return;
  said.add(key);
  current.warn(message);
}

/**
 * Reports a fault in the package's own code once per place. The host application must never see
 * our exceptions, so every hook catches and calls this instead of rethrowing.
 */
export function reportInternalError(where: string, err: unknown): void {
  const key = `internal:${where}`;
  if (said.has(key)) return;
  said.add(key);
  const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
  current.error(`internal error in ${where} (reported once; the application is unaffected): ${detail}`);
}

/** Forget what was said: for tests only. */
export function resetOnceState(): void {
  said.clear();
}
