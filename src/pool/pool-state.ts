// Per-pool state: identity, the attributes every series of this pool carries, the checkouts it
// has handed out, and the close reasons waiting for their `remove` event.
import type { Attributes } from '@opentelemetry/api';
import type { PgClient, PgPool } from '../pg-types';
import type { Checkout } from './checkout';
import type { CloseReason } from './close-reason';
import { serverAttributes, type ServerIdentity } from './pool-identity';

export class PoolState {
  private readonly ref: WeakRef<PgPool>;
  name = '';
  server: ServerIdentity = { address: '', port: 0, namespace: '' };
  /** pool name + server attributes, shared by every pool series */
  attributes: Attributes = {};
  idleAttributes: Attributes = {};
  usedAttributes: Attributes = {};
  resolved = false;
  ended = false;
  /** Checkouts that had to queue (pg_pool.connection.waits), observed at collection time. */
  waits = 0;
  readonly createdAt = Date.now();
  readonly checkouts = new Map<PgClient, Checkout>();
  readonly pendingClose = new WeakMap<PgClient, CloseReason>();

  constructor(pool: PgPool) {
    this.ref = new WeakRef(pool);
  }

  get pool(): PgPool | undefined {
    return this.ref.deref();
  }

  identify(name: string, server: ServerIdentity): void {
    this.name = name;
    this.server = server;
    this.attributes = Object.freeze({ 'db.client.connection.pool.name': name, ...serverAttributes(server) });
    this.idleAttributes = Object.freeze({ ...this.attributes, 'db.client.connection.state': 'idle' });
    this.usedAttributes = Object.freeze({ ...this.attributes, 'db.client.connection.state': 'used' });
    this.resolved = true;
  }

  /** The oldest current checkout, or undefined. Map order is insertion order. */
  oldestCheckout(): Checkout | undefined {
    for (const c of this.checkouts.values()) return c;
    return undefined;
  }
}
