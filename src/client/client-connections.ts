// Connections of bare pg.Client instances (not created by a tracked pool), and failed connection
// attempts of every client, pooled or not.
//
// tarn and sequelize-pool run their create code asynchronously (Knex and Sequelize await before
// constructing the client), so a client that connects while one of those pools is creating may be
// that pool's or a bare one. Such a client stays undecided until the pool's create returns it
// (claim) or fails with its error (takeFailure); one nobody claimed is bare from the next
// collection on.
import { performance } from 'node:perf_hooks';
import type { Attributes } from '@opentelemetry/api';
import type { PgClient } from '../pg/pg-types';
import { reportInternalError } from '../diag';
import { serverAttributes, serverOfClient } from '../pool/pool-identity';
import type { TrackedPool } from '../pool/tracked-pool';
import { METRICS } from '../telemetry/catalogue';
import type { MetricStore } from '../telemetry/metric-store';
import type { MetricSink, MetricSource } from '../telemetry/series';
import { connectionErrorType } from './error-type';

/** A connected client no pool has claimed this long after connecting is bare, whatever is still creating. */
const CLAIM_WINDOW_MS = 10_000;

export interface ConnectFailure {
  client: PgClient;
  err: unknown;
  elapsedMs: number;
}

interface Undecided {
  startedAt: number;
  /** performance.now() when the connect finished; undefined while it runs. */
  connectedAt?: number;
  failed?: { err: unknown; elapsedMs: number };
  onEnd?: () => void;
}

export class ClientConnections implements MetricSource {
  private readonly open = new Map<string, { attributes: Attributes; count: number }>();
  /** Open bare clients, for server sampling to tell this process's backends from the others'; each with its un-count. */
  private readonly openClients = new Map<PgClient, () => void>();
  private readonly undecided = new Map<PgClient, Undecided>();
  /** Pools whose create code awaits before it constructs the client, each with its count of creates under way. */
  private readonly asyncCreators = new Map<object, () => number>();

  /** Told of each bare client once it is open (server headroom learns its targets from them). */
  readonly openedListeners: Array<(client: PgClient) => void> = [];

  constructor(private readonly store: MetricStore) {}

  /**
   * Called when a client starts connecting; returns the callback to run when it has finished.
   * `undecided`: a pool may claim it later (see the top of this file).
   */
  connecting(client: PgClient, pool: TrackedPool | undefined, undecided = false): (err: unknown) => void {
    const startedAt = performance.now();
    if (undecided) this.undecided.set(client, { startedAt });
    return (err) => {
      try {
        const u = undecided ? this.undecided.get(client) : undefined;
        if (u) this.connectDone(client, u, err);
        else if (undecided) return; // claimed or decided while connecting
        else if (err) this.failed(client, pool, err, performance.now() - startedAt);
        else if (!pool) this.opened(client);
      } catch (e) {
        reportInternalError('client connect bookkeeping', e);
      }
    };
  }

  /**
   * A pool's create returned `client`: it is the pool's, not bare. Returns how long its connect
   * took, in seconds, when it was undecided until now (undefined otherwise).
   */
  claim(client: PgClient): number | undefined {
    const u = this.undecided.get(client);
    if (u) {
      this.undecided.delete(client);
      if (u.onEnd) client.removeListener('end', u.onEnd);
      return u.connectedAt === undefined ? undefined : (u.connectedAt - u.startedAt) / 1000;
    }
    // Decided bare before the pool returned it (a create slower than the claim window): take it back.
    this.openClients.get(client)?.();
    return undefined;
  }

  /** The unclaimed connect failure `err` is (or wraps), taken out of the undecided ones. */
  takeFailure(err: unknown): ConnectFailure | undefined {
    for (const [client, u] of this.undecided) {
      if (!u.failed || !causedBy(err, u.failed.err)) continue;
      this.undecided.delete(client);
      return { client, ...u.failed };
    }
    return undefined;
  }

  /** Counts a failure taken with takeFailure() as `pool`'s. */
  countFailure(f: ConnectFailure, pool: TrackedPool): void {
    this.failed(f.client, pool, f.err, f.elapsedMs);
  }

  /**
   * A pool whose create code awaits before it constructs the client (tarn under Knex,
   * sequelize-pool under Sequelize) is creating; `inFlight` reads its own count of creates under
   * way. A client that connects meanwhile stays undecided until the pool's create returns it.
   */
  creatingAsync(pool: object, inFlight: () => number): void {
    this.asyncCreators.set(pool, inFlight);
  }

  /** Whether any pool with asynchronous create code is creating now. */
  asyncCreatesInFlight(): boolean {
    for (const [pool, inFlight] of this.asyncCreators) {
      let n = 0;
      try {
        n = inFlight();
      } catch (e) {
        reportInternalError('pool create count', e);
      }
      if (n > 0) return true;
      this.asyncCreators.delete(pool);
    }
    return false;
  }

  clientsOpen(): Iterable<PgClient> {
    return this.openClients.keys();
  }

  collect(sink: MetricSink): void {
    if (this.undecided.size) this.decide();
    for (const { attributes, count } of this.open.values()) sink.observe(METRICS.clientConnections, count, attributes);
  }

  /** Undecided clients nobody can claim any more are bare: failures at once (a pool claims those in the same tick), open ones once no pool is creating. */
  private decide(): void {
    const now = performance.now();
    const creating = this.asyncCreatesInFlight();
    for (const [client, u] of this.undecided) {
      if (u.failed) {
        this.undecided.delete(client);
        this.failed(client, undefined, u.failed.err, u.failed.elapsedMs);
      } else if (u.connectedAt !== undefined && (!creating || now - u.connectedAt >= CLAIM_WINDOW_MS)) {
        this.undecided.delete(client);
        if (u.onEnd) client.removeListener('end', u.onEnd);
        this.opened(client);
      }
    }
  }

  private connectDone(client: PgClient, u: Undecided, err: unknown): void {
    u.connectedAt = performance.now();
    if (err) {
      u.failed = { err, elapsedMs: u.connectedAt - u.startedAt };
      return;
    }
    // Closed before anyone decided: it was never open at a collection.
    u.onEnd = () => this.undecided.delete(client);
    client.once('end', u.onEnd);
  }

  private failed(client: PgClient, pool: TrackedPool | undefined, err: unknown, elapsedMs: number): void {
    const limit = pool?.pool ? pool.kind.createTimeoutMs(pool.pool) : undefined;
    // The pool destroys the socket of a new client at its timeout; the client only sees a closed socket.
    const timedOut = typeof limit === 'number' && limit > 0 && elapsedMs >= limit - 1;
    const attributes: Attributes = {
      ...(pool ? pool.attributes : serverAttributes(serverOfClient(client))),
      'error.type': connectionErrorType(err, timedOut),
    };
    this.store.counter(METRICS.connectionErrors, attributes).add();
  }

  private opened(client: PgClient): void {
    const attributes = serverAttributes(serverOfClient(client));
    const key = `${attributes['server.address']}|${attributes['server.port']}|${attributes['db.namespace']}`;
    let entry = this.open.get(key);
    if (!entry) {
      entry = { attributes, count: 0 };
      this.open.set(key, entry);
    }
    entry.count++;
    const closed = () => {
      if (!this.openClients.delete(client)) return;
      client.removeListener('end', closed);
      const e = this.open.get(key);
      if (e) e.count = Math.max(0, e.count - 1);
    };
    this.openClients.set(client, closed);
    client.once('end', closed);
    for (const l of this.openedListeners) {
      try {
        l(client);
      } catch (e) {
        reportInternalError('bare client opened', e);
      }
    }
  }
}

/** `err` is `cause` or wraps it (Sequelize keeps the driver's error as `parent`/`original`, others as `cause`). */
function causedBy(err: unknown, cause: unknown): boolean {
  let e = err;
  for (let depth = 0; depth < 4 && e !== null && typeof e === 'object'; depth++) {
    if (e === cause) return true;
    const w = e as { parent?: unknown; original?: unknown; cause?: unknown };
    e = w.parent ?? w.original ?? w.cause;
  }
  return e === cause;
}
