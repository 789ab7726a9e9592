// Connections of bare pg.Client instances (not created by a tracked pool), and failed connection
// attempts of every client, pooled or not.
import { performance } from 'node:perf_hooks';
import type { Attributes } from '@opentelemetry/api';
import type { PgClient } from '../pg-types';
import { reportInternalError } from '../diag';
import { serverAttributes, serverOfClient } from '../pool/pool-identity';
import type { TrackedPool } from '../pool/tracked-pool';
import { METRICS } from '../telemetry/catalogue';
import type { MetricStore } from '../telemetry/metric-store';
import type { MetricSink, MetricSource } from '../telemetry/series';
import { connectionErrorType } from './error-type';

export class ClientConnections implements MetricSource {
  private readonly open = new Map<string, { attributes: Attributes; count: number }>();
  /** Open bare clients, for server sampling to tell this process's backends from the others'. */
  private readonly openClients = new Set<PgClient>();

  constructor(private readonly store: MetricStore) {}

  /** Called when a client starts connecting; returns the callback to run when it has finished. */
  connecting(client: PgClient, pool: TrackedPool | undefined): (err: unknown) => void {
    const startedAt = performance.now();
    return (err) => {
      try {
        if (err) this.failed(client, pool, err, startedAt);
        else if (!pool) this.opened(client);
      } catch (e) {
        reportInternalError('client connect bookkeeping', e);
      }
    };
  }

  clientsOpen(): Iterable<PgClient> {
    return this.openClients;
  }

  collect(sink: MetricSink): void {
    for (const { attributes, count } of this.open.values()) sink.observe(METRICS.clientConnections, count, attributes);
  }

  private failed(client: PgClient, pool: TrackedPool | undefined, err: unknown, startedAt: number): void {
    const server = pool?.resolved ? pool.server : serverOfClient(client);
    const limit = pool?.pool ? pool.kind.createTimeoutMs(pool.pool) : undefined;
    // The pool destroys the socket of a new client at its timeout; the client only sees a closed socket.
    const timedOut = typeof limit === 'number' && limit > 0 && performance.now() - startedAt >= limit - 1;
    const attributes: Attributes = { ...serverAttributes(server), 'error.type': connectionErrorType(err, timedOut) };
    if (pool?.resolved) attributes['db.client.connection.pool.name'] = pool.name;
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
    this.openClients.add(client);
    const closed = () => {
      this.openClients.delete(client);
      const e = this.open.get(key);
      if (e) e.count = Math.max(0, e.count - 1);
    };
    client.once('end', closed);
  }
}
