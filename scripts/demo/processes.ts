// Every process the demo starts is recorded here by pid and stopped by pid: on a normal end, on
// an error and on Ctrl-C/SIGTERM. Cleanups run once, newest first.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

export interface Started {
  name: string;
  pid: number;
}

const started: Started[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
let cleaning: Promise<void> | undefined;

export function startedPids(): Started[] {
  return [...started];
}

/** Records a pid the demo is responsible for (e.g. the PostgreSQL postmaster). */
export function recordPid(name: string, pid: number | undefined): void {
  if (pid !== undefined) started.push({ name, pid });
}

export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const fn = cleanups.pop()!;
      try {
        await fn();
      } catch (err) {
        process.stderr.write(`demo: cleanup step failed: ${String(err)}\n`);
      }
    }
  })();
  return cleaning;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function spawnTracked(name: string, command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start ${name}: ${command}`);
  recordPid(name, child.pid);
  onCleanup(() => stopChild(child));
  return child;
}

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Ctrl-C or SIGTERM: tell the run to stop, stop everything, then exit with the conventional code.
 * Later signals are ignored while stopping (under npm and tsx one Ctrl-C arrives more than once);
 * a stop that hangs is cut short.
 */
export function handleSignals(onSignal: () => void, finish: () => Promise<unknown>): void {
  let stopping = false;
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      onSignal();
      setTimeout(() => process.exit(code), 20_000).unref();
      void finish().finally(() => process.exit(code));
    });
  }
}
