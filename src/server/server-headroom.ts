// Server headroom: max_connections, the reserved slots and pg_stat_activity, read on the package's
// own monitoring connection (monitor-connection.ts), never on one of the application's.
//
// A *target* is what the application dials (host, port, database, user), learnt from the first
// connection of any pool kind or bare client to it; a *server* is what answers, known by what it
// says of itself (server-sample.ts). Two addresses of one server make one server; one pooler
// address in front of two servers makes two. Every target is sampled within a moment of its first
// connection, then every PG_POOL_OTEL_SERVER_SAMPLE_INTERVAL_MS while a pool or bare client of
// this process targets it (whether its connections are busy, idle or closed by an idle timeout);
// one sample per server per interval. A failed sample is tried again at the next interval and the
// last good values stay (stale, never zeros).
import type { Feature, FeatureContext } from '../feature';
import type { PgClient } from '../pg/pg-types';
import type { PoolEntry } from '../pool/pool-entry';
import type { TrackedPool } from '../pool/tracked-pool';
import { serverOfClient } from '../pool/pool-identity';
import { log, reportInternalError } from '../diag';
import { METRICS } from '../telemetry/catalogue';
import { connectionErrorType } from '../client/error-type';
import type { MetricSink } from '../telemetry/series';
import { sampleServer, type ClientClass, type SampleOutcome } from './monitor-connection';
import type { ServerSample } from './server-sample';
import { MonitoredServer, ServerTarget } from './monitored-server';
import { collectServerGauges } from './server-gauges';
import { UnrefTimer } from '../unref-timer';

/** From the first connection to a target to its first sample (then every interval). */
export const FIRST_SAMPLE_DELAY_MS = 200;

/** Intervals an unused target is kept (not sampled) before it is forgotten. */
const LINGER_INTERVALS = 5;

/** What identifies a target: what pg resolved from options, URL and PG* variables. */
function targetKey(client: PgClient): string {
  const s = serverOfClient(client);
  return `${s.address}|${s.port}|${client.database ?? ''}|${client.user ?? ''}`;
}

export class ServerHeadroom implements Feature {
  private readonly targets = new Map<string, ServerTarget>();
  private readonly servers = new Map<string, MonitoredServer>();
  private readonly timer = new UnrefTimer('server sample', () => this.tick());
  private round = 0;
  private stopped = false;
  /** pg's JavaScript Client class, handed over by the hooks as pg loads: the monitor of a pg.native app uses it. */
  private jsClient: ClientClass | undefined;
  private readonly said = new Set<string>();

  constructor(private readonly ctx: FeatureContext) {
    ctx.bareClients.openedListeners.push((client) => this.connected(client, undefined));
  }

  collect(sink: MetricSink): void {
    collectServerGauges(sink, this.servers.values());
    // One series per pooler address, however many of its databases this process uses.
    const poolers = new Set<string>();
    for (const t of this.targets.values()) {
      const at = `${String(t.attributes['server.address'])}|${String(t.attributes['server.port'])}`;
      if (!t.viaPooler || poolers.has(at)) continue;
      poolers.add(at);
      sink.observe(METRICS.poolerInfo, 1, t.attributes);
    }
  }

  clientConnected(entry: PoolEntry): void {
    this.connected(entry.client, entry.pool);
  }

  /** A pool seen again after the instrumentation was enabled anew: its open connections say where it goes. */
  poolRegistered(pool: TrackedPool): void {
    const p = pool.pool;
    if (p) for (const client of pool.kind.clients(p)) this.connected(client, pool);
  }

  poolEnded(pool: TrackedPool): void {
    for (const t of this.targets.values()) t.pools.delete(pool);
  }

  /** No more sampling; the last samples stay readable until the feature is replaced. */
  stop(): void {
    this.stopped = true;
    this.timer.stop();
  }

  private connected(client: PgClient, pool: TrackedPool | undefined): void {
    if (this.stopped || this.ctx.settings.serverSampleIntervalMs <= 0) return;
    const Client = this.clientClassOf(client);
    const key = targetKey(client);
    let target = this.targets.get(key);
    if (!target) {
      if (!Client) return;
      const { address, port } = serverOfClient(client);
      const attributes = Object.freeze({ 'server.address': address, 'server.port': port });
      const options = pool?.pool ? pool.kind.connectionOptions?.(pool.pool) : undefined;
      // The failure series exists from the start, so increase() sees the first failure.
      const failures = this.ctx.store.counter(METRICS.serverSampleFailures, attributes);
      target = new ServerTarget(key, attributes, { Client, config: options ?? connectionOptionsOf(client) }, failures);
      this.targets.set(key, target);
      // The first sample soon, not at once: the application's own first queries go first (a
      // monitoring connection opened in the same moment competes with them for CPU and the server).
      const first = target;
      first.notBefore = Date.now() + FIRST_SAMPLE_DELAY_MS;
      setTimeout(() => this.sample(first, this.round), FIRST_SAMPLE_DELAY_MS).unref();
    }
    if (pool) target.pools.add(pool);
    target.unusedRounds = 0;
    this.schedule();
  }

  /** pg's JavaScript Client class, as the hooks load it: the monitoring connection of an app on pg.native uses it. */
  useClientClass(Client: unknown): void {
    if (typeof Client === 'function') this.jsClient ??= Client as ClientClass;
  }

  /** The class to open a monitoring connection with: the app's client's own, unless it is the native one. */
  private clientClassOf(client: PgClient): ClientClass | undefined {
    return isJsClient(client) ? (client.constructor as ClientClass) : this.jsClient;
  }

  private schedule(): void {
    const interval = this.ctx.settings.serverSampleIntervalMs;
    if (this.timer.running && this.timer.every === interval) return;
    this.timer.stop();
    if (interval <= 0 || this.stopped) return;
    this.timer.repeat(interval);
  }

  private tick(): void {
    this.round++;
    if (this.timer.every !== this.ctx.settings.serverSampleIntervalMs) this.schedule();
    this.dropUnused();
    for (const t of this.targets.values()) this.sample(t, this.round);
  }

  /**
   * Targets no pool and no open bare client use any more stop being sampled, and are forgotten
   * (with their server, when it has no other target) after LINGER_INTERVALS: a service that opens a
   * short-lived client per job is sampled at its interval, not at each new client.
   */
  private dropUnused(): void {
    const bare = new Set<string>();
    for (const c of this.ctx.bareClients.clientsOpen()) bare.add(targetKey(c));
    for (const [key, t] of this.targets) {
      for (const p of t.pools) if (p.ended || p.pool === undefined) t.pools.delete(p);
      if (t.pools.size > 0 || bare.has(key)) {
        t.unusedRounds = 0;
        continue;
      }
      if (++t.unusedRounds <= LINGER_INTERVALS) continue;
      this.targets.delete(key);
      this.unbind(t);
    }
    if (this.targets.size === 0) this.timer.stop();
  }

  private unbind(t: ServerTarget): void {
    const s = t.server;
    t.server = undefined;
    if (!s) return;
    s.targets.delete(t);
    if (s.targets.size === 0) this.servers.delete(s.identity);
  }

  private sample(t: ServerTarget, round: number): void {
    if (this.stopped || t.running || t.refused || t.unusedRounds > 0 || !this.targets.has(t.key)) return;
    // An interval shorter than the first delay must not sample a new target sooner.
    if (Date.now() < t.notBefore - 10) return; // (the delayed first call may run a clock tick early)
    // Another target of the same server sampled it in this interval.
    if (t.server && t.server.round === round) return;
    if (t.server) t.server.round = round;
    t.running = true;
    const pids = () => {
      try {
        return this.ownPids(t);
      } catch (e) {
        reportInternalError('server sample pids', e);
        return [];
      }
    };
    void sampleServer(t.settings, pids)
      .then((outcome) => {
        if (!this.stopped) this.record(t, outcome);
      })
      .catch((e: unknown) => reportInternalError('server sample', e))
      .finally(() => {
        t.running = false;
      });
  }

  private record(t: ServerTarget, outcome: SampleOutcome): void {
    switch (outcome.kind) {
      case 'sampled': {
        const s = this.bind(t, outcome.sample, outcome.viaPooler);
        s.limits = outcome.sample.limits;
        s.activity = outcome.sample.activity;
        s.viaPooler = outcome.viaPooler;
        s.sampledAt = outcome.at;
        s.full = false;
        s.round = this.round;
        return;
      }
      case 'full': {
        // No query could run: the server is full, which is what the headroom series are for.
        const s = t.server ?? this.provisional(t);
        s.full = true;
        s.sampledAt = Date.now() / 1000;
        return;
      }
      case 'refused':
        t.refused = true;
        this.unbind(t);
        log().info(
          `server sampling is off for ${where(t)}: it does not run the monitoring query (${messageOf(outcome.err)}), ` +
            'as a pooler admin console does; nothing else is affected.'
        );
        return;
      case 'failed':
        t.failures.add();
        this.warnOnce(
          `${t.key}:${outcome.stage}:${connectionErrorType(outcome.err, false)}`,
          `${outcome.stage === 'connect' ? 'opening the monitoring connection to' : 'sampling pg_stat_activity on'} ${where(t)} ` +
            `failed (further failures of this kind are only counted): ${messageOf(outcome.err)}`
        );
    }
  }

  /** The server the target reached: found by what it says of itself, whatever address reached it. */
  private bind(t: ServerTarget, sample: ServerSample, viaPooler: boolean): MonitoredServer {
    if (viaPooler && !t.viaPooler) {
      log().info(
        `${where(t)} is a connection pooler (the session's backend is not the one the connection announced) in front of ` +
          `PostgreSQL ${sample.address || 'localhost'}:${sample.port}: its backends are counted with owner="unknown".`
      );
    }
    t.viaPooler = viaPooler;
    let s = this.servers.get(sample.identity);
    if (!s) {
      const attributes = viaPooler
        ? Object.freeze({ 'server.address': sample.address || 'localhost', 'server.port': sample.port })
        : t.attributes;
      s = new MonitoredServer(sample.identity, attributes);
      this.servers.set(sample.identity, s);
    }
    if (t.server !== s) {
      this.unbind(t);
      t.server = s;
      s.targets.add(t);
    }
    return s;
  }

  /** A server known only by the address that refused us for lack of slots. */
  private provisional(t: ServerTarget): MonitoredServer {
    const identity = `dial:${t.key}`;
    let s = this.servers.get(identity);
    if (!s) this.servers.set(identity, (s = new MonitoredServer(identity, t.attributes)));
    t.server = s;
    s.targets.add(t);
    return s;
  }

  /**
   * Backend pids of this process's connections that reach `t`'s server directly (any pool kind,
   * bare clients): those dialling the same address and port, and those of other targets already
   * known to reach the same server. Behind a pooler they are not the server's pids at all, and the
   * sample reports the owner as unknown.
   */
  private ownPids(t: ServerTarget): number[] {
    const keys = new Set<string>();
    for (const other of t.server?.targets ?? []) if (!other.viaPooler) keys.add(other.key);
    const dialled = `${String(t.attributes['server.address'])}|${String(t.attributes['server.port'])}|`;
    const pids: number[] = [];
    const add = (c: PgClient) => {
      if (typeof c.processID !== 'number') return;
      const key = targetKey(c);
      if (key.startsWith(dialled) || keys.has(key)) pids.push(c.processID);
    };
    for (const p of this.ctx.registry.liveStates()) {
      const pool = p.pool;
      if (pool) for (const c of p.kind.clients(pool)) add(c);
    }
    for (const c of this.ctx.bareClients.clientsOpen()) add(c);
    return pids;
  }

  private warnOnce(key: string, message: string): void {
    // Once per kind of failure: a server that refuses every sample must not flood the app's logs.
    if (this.said.has(key)) return;
    this.said.add(key);
    log().warn(message);
  }
}

function isJsClient(client: PgClient): boolean {
  return typeof (client.connection as { on?: unknown } | undefined)?.on === 'function';
}

/** The options pg resolved for `client`, for a pool kind that keeps none of its own (Knex, Sequelize, a bare client). */
function connectionOptionsOf(client: PgClient): Record<string, unknown> {
  const cp = (client.connectionParameters ?? {}) as Record<string, unknown>;
  const c = client as PgClient & { password?: unknown; ssl?: unknown };
  const options: Record<string, unknown> = {
    host: cp.host ?? client.host,
    port: cp.port ?? client.port,
    database: cp.database ?? client.database,
    user: cp.user ?? client.user,
    password: c.password ?? cp.password,
    ssl: c.ssl ?? cp.ssl,
  };
  for (const key of ['options', 'client_encoding', 'sslnegotiation']) if (cp[key] != null) options[key] = cp[key];
  return options;
}

const where = (t: ServerTarget) => `${String(t.attributes['server.address'])}:${String(t.attributes['server.port'])}/${t.key.split('|')[2] ?? ''}`;

function messageOf(err: unknown): string {
  const message = (err as { message?: unknown } | null | undefined)?.message;
  return typeof message === 'string' ? message : String(err);
}
