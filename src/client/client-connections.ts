// Connections of bare pg.Client instances (Knex, Sequelize and Slonik pool their own), and
// failed connection attempts of every client, pooled or not.
import { performance } from 'node:perf_hooks';
import type { Attributes } from '@opentelemetry/api';
import type { PgClient } from '../pg-types';
import type { Instruments } from '../telemetry/instruments';
import { reportInternalError } from '../diag';
import { serverAttributes, serverOfClient } from '../pool/pool-identity';
import type { PoolState } from '../pool/pool-state';
import { connectionErrorType } from './error-type';

export class ClientConnections {
  private readonly open = new Map<string, { attributes: Attributes; count: number }>();
  /** Open bare clients, for server sampling to tell this process's backends from the others'. */
  private readonly openClients = new Set<PgClient>();

  constructor(private readonly instruments: () => Instruments | undefined) {}

  /** Called when a client starts connecting; returns the callback to run when it has finished. */
  connecting(client: PgClient, pool: PoolState | undefined): (err: unknown) => void {
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

  *counts(): IterableIterator<[Attributes, number]> {
    for (const { attributes, count } of this.open.values()) yield [attributes, count];
  }

  private failed(client: PgClient, pool: PoolState | undefined, err: unknown, startedAt: number): void {
    const server = pool?.resolved ? pool.server : serverOfClient(client);
    const attributes: Attributes = {
      ...serverAttributes(server),
      'error.type': connectionErrorType(err, pool ? timedOut(pool, startedAt) : false),
    };
    if (pool?.resolved) attributes['db.client.connection.pool.name'] = pool.name;
    this.instruments()?.connectionErrors.add(1, attributes);
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

/** pg-pool destroys the socket of a new client at connectionTimeoutMillis; the client only sees a closed socket. */
function timedOut(pool: PoolState, startedAt: number): boolean {
  const limit = pool.pool?.options?.connectionTimeoutMillis;
  return typeof limit === 'number' && limit > 0 && performance.now() - startedAt >= limit - 1;
}
