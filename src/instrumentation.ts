// Hooks into pg and pg-pool: prototype methods only (ESM named exports are snapshots, so
// constructors are never replaced), each copy of pg that gets loaded, never `pg.native`.
import { context } from '@opentelemetry/api';
import {
  InstrumentationBase,
  InstrumentationNodeModuleDefinition,
  InstrumentationNodeModuleFile,
} from '@opentelemetry/instrumentation';
import { resolveSettings, type PgPoolInstrumentationConfig, type PgPoolOtelSettings } from './config';
import { reportInternalError, setLogger, stderrLogger } from './diag';
import type { Callback, PgClient, PgPool } from './pg-types';
import { createInstruments, type Instruments } from './telemetry/instruments';
import { PoolTracker } from './pool/pool-tracker';
import { registerPoolGauges } from './pool/pool-gauges';
import { ClientConnections } from './client/client-connections';
import { QueryTracker } from './query/query-tracker';
import { promiseFromCallback, wrapCallback } from './callback-form';
import { VERSION } from './version';
import type { Feature } from './feature';
import { createMisuseFeatures } from './pool/misuse-features';
import { createServerFeatures } from './server/server-features';
import { waitForLentClient } from './server/idle-lease';

const PATCHED = Symbol.for('pg-pool-otel.patched');
type Proto = Record<string | symbol, unknown>;

/** The instrumentation behind both the preload and programmatic use. */
export class PgPoolInstrumentation extends InstrumentationBase<PgPoolInstrumentationConfig> {
  // Declared, not initialised: the base constructor calls init() and _updateMetricInstruments()
  // before subclass field initialisers would run.
  declare private settingsValue: PgPoolOtelSettings | undefined;
  declare private instrumentsValue: Instruments | undefined;
  declare private poolTracker: PoolTracker | undefined;
  declare private clientConnections: ClientConnections | undefined;
  declare private queryTracker: QueryTracker | undefined;
  declare private featureList: Feature[] | undefined;

  constructor(config: PgPoolInstrumentationConfig = {}) {
    super('pg-pool-otel', VERSION, config);
  }

  override setConfig(config: PgPoolInstrumentationConfig = {}): void {
    super.setConfig(config);
    this.settingsValue = undefined;
  }

  /** Effective settings: the config object, then PG_POOL_OTEL_* variables, then defaults. */
  get settings(): PgPoolOtelSettings {
    if (!this.settingsValue) {
      this.settingsValue = resolveSettings(this.getConfig());
      setLogger(stderrLogger(this.settingsValue.logLevel));
    }
    return this.settingsValue;
  }

  /** Pool tracking, shared with leak detection and server sampling. */
  get pools(): PoolTracker {
    if (!this.poolTracker) {
      this.poolTracker = new PoolTracker(() => this.instrumentsValue, () => this.settings);
    }
    return this.poolTracker;
  }

  /** Features built on pool tracking; each listens to pool lifecycle events. */
  get features(): Feature[] {
    if (!this.featureList) {
      const ctx = {
        settings: () => this.settings,
        pools: this.pools,
        tracer: () => this.tracer,
        bareClients: () => this.clients.clientsOpen(),
      };
      this.featureList = [...createMisuseFeatures(ctx), ...createServerFeatures(ctx)];
      this.pools.listeners.push(...this.featureList);
    }
    return this.featureList;
  }

  override disable(): void {
    super.disable();
    for (const f of this.featureList ?? []) {
      try {
        f.stop?.();
      } catch (e) {
        reportInternalError('feature stop', e);
      }
    }
  }

  private get clients(): ClientConnections {
    return (this.clientConnections ??= new ClientConnections(() => this.instrumentsValue));
  }

  private get queries(): QueryTracker {
    return (this.queryTracker ??= new QueryTracker(
      () => this.instrumentsValue,
      () => this.tracer,
      () => this.settings,
      this.pools
    ));
  }

  protected override _updateMetricInstruments(): void {
    try {
      const instruments = createInstruments(this.meter);
      registerPoolGauges(this.meter, instruments, this.pools, this.clients);
      this.instrumentsValue = instruments;
      for (const f of this.features) f.useMeter?.(this.meter);
    } catch (e) {
      reportInternalError('metric instrument setup', e);
    }
  }

  protected init() {
    const poolModule = new InstrumentationNodeModuleDefinition(
      'pg-pool',
      ['>=3.5.0 <4'],
      (exports: unknown) => {
        this.patchPool(exportedClass(exports));
        return exports;
      },
      (exports: unknown) => this.unpatch(exportedClass(exports), ['connect', 'query', 'end', 'newClient'])
    );
    const clientFile = (name: string) =>
      new InstrumentationNodeModuleFile(
        name,
        ['>=8.7.0 <9'],
        (exports: unknown) => {
          this.patchClient(exportedClass(exports));
          return exports;
        },
        (exports: unknown) => this.unpatch(exportedClass(exports), ['connect', 'query'])
      );
    const pgModule = new InstrumentationNodeModuleDefinition('pg', ['>=8.7.0 <9'], undefined, undefined, [
      clientFile('pg/lib/client.js'),
      clientFile('pg/lib/native/client.js'),
    ]);
    return [poolModule, pgModule];
  }

  private patchPool(Pool: { prototype: Proto } | undefined): void {
    const proto = Pool?.prototype;
    if (!proto || proto[PATCHED]) return;
    proto[PATCHED] = true;
    const self = this;
    // Set while pg-pool's query() runs: its synchronous this.connect() call belongs to that query.
    let poolQuery: { text: unknown } | undefined;

    this._wrap(proto, 'connect', (original: unknown) => {
      // While server sampling holds a client this checkout would have got, the checkout waits for
      // it (one short query) instead of making pg-pool open a connection: src/server/idle-lease.ts.
      const connect = waitForLentClient(original as Callback);
      return function patchedConnect(this: PgPool, ...args: unknown[]) {
        let pending: ReturnType<PoolTracker['beginCheckout']>;
        try {
          pending = self.pools.beginCheckout(this, patchedConnect, poolQuery);
        } catch (e) {
          reportInternalError('pool.connect hook', e);
        }
        poolQuery = undefined;
        if (!pending) return connect.apply(this, args);
        const done = pending;
        const cb = args[0];
        if (typeof cb === 'function') {
          // The callback runs when some other request releases a connection: bind it to the
          // caller's context so the query it runs gets the caller's span as parent.
          const bound = context.bind(context.active(), cb as Callback);
          return connect.call(this, wrapCallback(bound, (a) => done.complete(a[0], a[1] as PgClient)));
        }
        const PromiseImpl = (this as { Promise?: PromiseConstructor }).Promise;
        return promiseFromCallback<PgClient>(PromiseImpl, (settle) =>
          connect.call(this, (err: unknown, client: PgClient) => {
            done.complete(err, client);
            settle(err, client);
          })
        );
      };
    });

    this._wrap(proto, 'query', (original: unknown) => {
      const query = original as Callback;
      // pg-pool's query() calls this.connect() synchronously: the flag tells the connect hook that
      // the checkout belongs to a single query, whose span then carries the wait.
      return function patchedPoolQuery(this: PgPool, ...args: unknown[]) {
        poolQuery = { text: args[0] };
        try {
          return query.apply(this, args);
        } finally {
          poolQuery = undefined;
        }
      };
    });

    this._wrap(proto, 'end', (original: unknown) => {
      const end = original as Callback;
      return function patchedEnd(this: PgPool, ...args: unknown[]) {
        try {
          self.pools.poolEnding(this);
        } catch (e) {
          reportInternalError('pool.end hook', e);
        }
        return end.apply(this, args);
      };
    });

    if (typeof proto.newClient === 'function') {
      this._wrap(proto, 'newClient', (original: unknown) => {
        const newClient = original as Callback;
        return function patchedNewClient(this: PgPool, ...args: unknown[]) {
          return self.pools.creatingClientFor(this, () => newClient.apply(this, args));
        };
      });
    }
  }

  private patchClient(Client: { prototype: Proto } | undefined): void {
    const proto = Client?.prototype;
    if (!proto || proto[PATCHED]) return;
    proto[PATCHED] = true;
    const self = this;

    this._wrap(proto, 'query', (original: unknown) => {
      const query = original as Callback;
      return function patchedQuery(this: PgClient, ...args: unknown[]) {
        return self.queries.run(this, query, args);
      };
    });

    this._wrap(proto, 'connect', (original: unknown) => {
      const connect = original as Callback;
      return function patchedClientConnect(this: PgClient, ...args: unknown[]) {
        let finished: ((err: unknown) => void) | undefined;
        try {
          finished = self.clients.connecting(this, self.pools.clientConnecting(this));
        } catch (e) {
          reportInternalError('client.connect hook', e);
        }
        if (!finished) return connect.apply(this, args);
        const done = finished;
        const cb = args[0];
        if (typeof cb === 'function') {
          return connect.call(this, wrapCallback(cb as Callback, (a) => done(a[0])));
        }
        const PromiseImpl = (this as { _Promise?: PromiseConstructor })._Promise;
        return promiseFromCallback<PgClient>(PromiseImpl, (settle) =>
          connect.call(this, (err: unknown) => {
            done(err);
            settle(err, this);
          })
        );
      };
    });
  }

  private unpatch(Cls: { prototype: Proto } | undefined, methods: string[]): void {
    const proto = Cls?.prototype;
    if (!proto || !proto[PATCHED]) return;
    for (const m of methods) if (typeof proto[m] === 'function') this._unwrap(proto, m);
    delete proto[PATCHED];
  }
}

/** CommonJS exports the class itself; an ESM namespace has it as `default`. */
function exportedClass(exports: unknown): { prototype: Proto } | undefined {
  const isClass = (v: unknown): v is { prototype: Proto } =>
    typeof v === 'function' && typeof (v as { prototype?: unknown }).prototype === 'object';
  if (isClass(exports)) return exports;
  const d = (exports as { default?: unknown } | null | undefined)?.default;
  return isClass(d) ? d : undefined;
}
