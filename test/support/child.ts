// Runs an app as a separate node process, as a user would start it, and reads its output.
import { spawn, type ChildProcess } from 'node:child_process';

export interface RunningApp {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when stdout contains `text`. */
  waitFor(text: string, ms?: number): Promise<void>;
  /** Resolves with the exit code (or signal) once the process ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

export function startApp(args: string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): RunningApp {
  // NODE_TEST_CONTEXT would make the child act as a test-runner child: it must run as a plain app.
  const { NODE_TEST_CONTEXT: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, args, { cwd, env: { ...inherited, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal }))
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(text, ms = 15000) {
      return new Promise((resolve, reject) => {
        const until = Date.now() + ms;
        const tick = () => {
          if (out.includes(text)) return resolve();
          if (child.exitCode !== null || Date.now() > until) {
            return reject(new Error(`no "${text}" from app (exit ${child.exitCode}); stdout: ${out}\nstderr: ${err}`));
          }
          setTimeout(tick, 20);
        };
        tick();
      });
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Fetches a Prometheus text page. */
export async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

/** Metric family names present in a Prometheus text page (from sample lines). */
export function sampleNames(page: string): Set<string> {
  const names = new Set<string>();
  for (const line of page.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (m) names.add(m[1]!);
  }
  return names;
}
