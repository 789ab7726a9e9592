// Starts one copy of the example service exactly as a user would run it in production, under the
// package's preload, and hands its stderr lines (where the package logs leak reports) to the view.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { freePort } from '../../tools/embedded-postgres';
import { spawnTracked, stopChild } from './processes';

export const ROOT = join(__dirname, '../..');
export const PRELOAD = 'pg-pool-otel/register';
export const ENTRY = 'examples/service/server.js';
/** The line a user puts in production (run from the repository root here). */
export const COMMAND = `node --require ${PRELOAD} ${ENTRY}`;

export interface Service {
  name: string;
  pid: number;
  baseUrl: string;
  metricsUrl: string;
  metricsPort: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

export interface ServiceOptions {
  name: string;
  databaseUrl: string;
  /** Extra environment: pool sizes and PG_POOL_OTEL_* settings. */
  env: Record<string, string>;
  /** False runs the service on bare pg, to compare (every package series is then n/a). */
  preload: boolean;
  onStderr(service: string, line: string): void;
}

export function preloadBuilt(): boolean {
  return existsSync(join(ROOT, 'dist/register.js'));
}

async function waitUntilUp(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode} before serving ${url}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

export async function startService(options: ServiceOptions): Promise<Service> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const env = {
    ...process.env,
    ...options.env,
    DATABASE_URL: options.databaseUrl,
    HOST: '127.0.0.1',
    PORT: String(port),
    OTEL_SERVICE_NAME: options.name,
    OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
    OTEL_EXPORTER_PROMETHEUS_PORT: String(metricsPort),
  };
  const args = options.preload ? ['--require', PRELOAD, ENTRY] : [ENTRY];
  const child = spawnTracked(options.name, process.execPath, args, { cwd: ROOT, env });
  createInterface({ input: child.stderr! }).on('line', (line) => options.onStderr(options.name, line));
  child.stdout!.resume(); // its access log is not part of the story
  const service: Service = {
    name: options.name,
    pid: child.pid!,
    baseUrl: `http://127.0.0.1:${port}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    metricsPort,
    child,
    stop: () => stopChild(child),
  };
  try {
    await waitUntilUp(`${service.baseUrl}/healthz`, child, 15_000);
    if (options.preload) await waitUntilUp(service.metricsUrl, child, 5_000);
  } catch (err) {
    await service.stop();
    throw new Error(`service ${options.name}: ${(err as Error).message}`);
  }
  return service;
}
