// The instrumentation behind both the preload and programmatic use: which modules to hook, and the
// lifecycle. enable() attaches, disable() detaches everything; the metrics reach readers through
// the producer (metricProducer(), the fast path) or, without it, through SDK instruments.
import {
  InstrumentationBase,
  InstrumentationNodeModuleDefinition,
  InstrumentationNodeModuleFile,
} from '@opentelemetry/instrumentation';
import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import type { MetricProducer } from '@opentelemetry/sdk-metrics';
import { resolveSettings, type PgPoolInstrumentationConfig, type PgPoolOtelSettings } from './settings';
import { log, reportInternalError, setLogger, stderrLogger } from './diag';
import { VERSION } from './version';
import { PATCHED, type Callback } from './pg/pg-types';
// Types only: the Core (hooks, queries, leak detection, server sampling: most of the package) is
// loaded when the first hooked module loads, so a process that never loads pg does not pay for it.
import type { Core } from './core';
import type { Wrap } from './hooks/pg-pool';
import { KNEX_BUILDERS, entryPoints } from './hooks/entry-points';
import { checkoutSources, type CheckoutSource } from './leaks/checkout-sources';
import { NEON_QUERY_METHODS, patchNeonQueryPromise, wrapNeon } from './hooks/neon';
import { registerRunning, unregisterRunning, type RunningInstrumentation } from './instrument-pg';
import { MetricStore } from './telemetry/metric-store';
import { attachSdkInstruments, type SdkInstruments } from './telemetry/fallback';
import { PgPoolMetricProducer, type MetricProducerOptions } from './telemetry/producer';

/* eslint-disable @typescript-eslint/no-require-imports */
const loadCore = () => (require('./core') as typeof import('./core')).Core;
const loadPatchClient = () => (require('./hooks/pg-client') as typeof import('./hooks/pg-client')).patchClient;
/* eslint-enable @typescript-eslint/no-require-imports */

/**
 * What pg-pool-otel/testing sees of an enabled instrumentation whose Core is not built yet (no
 * hooked module loaded): running, no checkout, no pool seen.
 */
const standIn = (): CheckoutSource => ({ outstanding: () => [], markLongLived: () => false, poolsSeen: () => 0 });

const PG_POOL_METHODS = ['connect', 'query', 'end', 'newClient', '_release'];
const PG_CLIENT_METHODS = ['connect', 'query', '_handleReadyForQuery'];
const TARN_METHODS = ['acquire', 'release', 'destroy', 'check', '_create', '_destroy'];
const SEQUELIZE_POOL_METHODS = ['acquire', 'release', 'destroy', 'drain', 'destroyAllNow', '_removeIdle', '_dispense', '_createResource', '_addResourceToInUseObjects', '_addResourceToAvailableObjects'];
type Proto = Record<string | symbol, unknown>;

export class PgPoolInstrumentation extends InstrumentationBase<PgPoolInstrumentationConfig> {
  // Declared, not initialised: the base constructor calls init(), enable() and
  // _updateMetricInstruments() before subclass field initialisers would run.
  declare private coreValue: Core | undefined;
  /** Settings resolved at enable(), for the Core built later (problems are reported at start-up). */
  declare private pendingSettings: PgPoolOtelSettings | undefined;
  declare private standIn: CheckoutSource | undefined;
  declare private storeValue: MetricStore | undefined;
  declare private sdkInstruments: SdkInstruments | undefined;
  declare private producers: PgPoolMetricProducer[] | undefined;
  declare private meterProviderGiven: boolean | undefined;

  /** Prototypes patched outside the require hook (instrumentPg, @neondatabase/serverless), to unpatch on disable(). */
  declare private handedOver: Array<[Proto, string[]]> | undefined;
  declare private runningHandle: RunningInstrumentation | undefined;

  constructor(config: PgPoolInstrumentationConfig = {}) {
    super('pg-pool-otel', VERSION, config);
  }

  /** Effective settings: the config object, then PG_POOL_OTEL_* variables, then defaults. */
  get settings(): PgPoolOtelSettings {
    return this.core.settings;
  }

  override setConfig(config: PgPoolInstrumentationConfig = {}): void {
    super.setConfig(config);
    // Updated in place: everything built on the settings holds this one object.
    if (this.coreValue) Object.assign(this.coreValue.settings, this.resolve());
    else if (this.pendingSettings) this.pendingSettings = this.resolve();
  }

  /**
   * The fast path for apps that run their own SDK: pass it to the reader that exports the metrics
   * (`new PeriodicExportingMetricReader({ exporter, metricProducers: [pgPool.metricProducer()] })`).
   * The package then aggregates its measurements itself and no SDK instrument is recorded per
   * query. Call it before the meter provider is given to the instrumentation; one per reader.
   */
  metricProducer(options: MetricProducerOptions = {}): MetricProducer {
    const producer = new PgPoolMetricProducer(this.store, options);
    (this.producers ??= []).push(producer);
    this.sdkInstruments?.detach();
    this.sdkInstruments = undefined;
    if (this.meterProviderGiven) {
      log().warn(
        'metricProducer() was called after the instrumentation got a meter provider: measurements recorded ' +
          'until now stay with the SDK instruments. Create the producer before registering the instrumentation.'
      );
    }
    return producer;
  }

  override enable(): void {
    if (this.coreValue?.stopped) this.coreValue = new (loadCore())(this.store, this.coreValue.settings, this.tracer);
    else if (!this.coreValue) {
      // The Core waits for the first hooked module; the leak check of pg-pool-otel/testing lists
      // this instrumentation from here on all the same.
      this.pendingSettings ??= this.resolve();
      checkoutSources().add((this.standIn ??= standIn()));
    }
    super.enable();
    registerRunning((this.runningHandle ??= { instrument: (m) => this.patchPgModule(m) }));
  }

  override disable(): void {
    super.disable();
    if (this.runningHandle) unregisterRunning(this.runningHandle);
    for (const [proto, methods] of this.handedOver?.splice(0) ?? []) this.unpatchProto(proto, methods);
    this.coreValue?.stop();
    if (this.standIn) checkoutSources().delete(this.standIn);
  }

  override setTracerProvider(tracerProvider: TracerProvider): void {
    super.setTracerProvider(tracerProvider);
    if (this.coreValue) this.coreValue.tracing.tracer = this.tracer;
  }

  override setMeterProvider(meterProvider: MeterProvider): void {
    this.meterProviderGiven = true;
    super.setMeterProvider(meterProvider);
  }

  protected override _updateMetricInstruments(): void {
    this.sdkInstruments?.detach();
    this.sdkInstruments = undefined;
    // With a producer the readers get everything from it: SDK instruments would export it twice.
    if (!this.producers?.length) this.sdkInstruments = attachSdkInstruments(this.meter, this.store);
  }

  private get store(): MetricStore {
    return (this.storeValue ??= new MetricStore());
  }

  /** @internal What the instrumentation tracks (for the package's own tests); built on first use. */
  get core(): Core {
    if (!this.coreValue) {
      this.coreValue = new (loadCore())(this.store, this.pendingSettings ?? this.resolve(), this.tracer);
      this.pendingSettings = undefined;
      if (this.standIn) checkoutSources().delete(this.standIn);
    }
    return this.coreValue;
  }

  private resolve(): PgPoolOtelSettings {
    const settings = resolveSettings(this.getConfig());
    setLogger(stderrLogger(settings.logLevel));
    return settings;
  }

  protected init() {
    const wrap = this.wrapFn;
    const poolModule = new InstrumentationNodeModuleDefinition(
      'pg-pool',
      ['>=3.5.0 <4'],
      (exports: unknown) => {
        patchOnce(exportedClass(exports)?.prototype, (proto) => this.core.pgPool.patch(proto, wrap));
        return exports;
      },
      (exports: unknown) => this.unpatch(exportedClass(exports), PG_POOL_METHODS)
    );
    const clientFile = (name: string) =>
      new InstrumentationNodeModuleFile(
        name,
        ['>=8.7.0 <9'],
        (exports: unknown) => {
          const core = this.core;
          const Cls = exportedClass(exports);
          patchOnce(Cls?.prototype, (proto) => loadPatchClient()(proto, wrap, core.pools, core.clients, core.queries));
          // The monitoring connection is always a JavaScript client, also in an app on pg.native.
          if (Cls && name === 'pg/lib/client.js') core.headroom.useClientClass(Cls);
          return exports;
        },
        (exports: unknown) => this.unpatch(exportedClass(exports), PG_CLIENT_METHODS)
      );
    const pgModule = new InstrumentationNodeModuleDefinition('pg', ['>=8.7.0 <9'], undefined, undefined, [
      clientFile('pg/lib/client.js'),
      clientFile('pg/lib/native/client.js'),
    ]);
    return [
      poolModule,
      pgModule,
      this.resourcePoolModule(wrap, 'tarn', ['>=3.0.0 <4'], TARN_METHODS, (core) => core.tarn),
      this.resourcePoolModule(wrap, 'sequelize-pool', ['>=6.0.0 <9'], SEQUELIZE_POOL_METHODS, (core) => core.sequelizePool),
      this.knexModule(wrap),
      this.sequelizeModule(wrap),
      // Its index.js (require) and index.mjs (import, seen under --import) each bundle their own pg.
      new InstrumentationNodeModuleDefinition('@neondatabase/serverless', ['>=0.9.0 <2'], (exports: unknown) => this.patchNeon(exports)),
    ];
  }

  private get wrapFn(): Wrap {
    return (proto, name, wrapper) => this._wrap(proto, name, wrapper as never);
  }

  /**
   * @internal instrumentPg(): a pg-like module object (pg, its ESM namespace, a bundled copy, or a
   * package with node-postgres classes inside, as @neondatabase/serverless) patched as the
   * require hook patches pg and pg-pool.
   * False when it has neither a Pool nor a Client class.
   */
  patchPgModule(module: unknown): boolean {
    try {
      const m = pgLike(module);
      if (!m) return false;
      const wrap = this.wrapFn;
      const core = this.core;
      // The prototype that defines the method: pg-pool's under pg's BoundPool (and Neon's pool), pg's Client under NeonClient.
      this.patchHandedOver(definer(m.Pool, 'connect'), PG_POOL_METHODS, (proto) => core.pgPool.patch(proto, wrap));
      const client = (proto: Proto) => loadPatchClient()(proto, wrap, core.pools, core.clients, core.queries);
      this.patchHandedOver(definer(m.Client, 'query'), PG_CLIENT_METHODS, client);
      const jsClient = exportedClass(m.Client);
      if (jsClient) core.headroom.useClientClass(jsClient);
      // pg.native is a getter that loads an addon: only a value it already left behind is looked at.
      const native = Object.getOwnPropertyDescriptor(m, 'native');
      const nativeClient = native && 'value' in native ? pgLike(native.value)?.Client : undefined;
      this.patchHandedOver(definer(nativeClient, 'query'), PG_CLIENT_METHODS, client);
      // @neondatabase/serverless: neon()'s HTTP queries.
      const queryPromise = exportedClass((m as { NeonQueryPromise?: unknown }).NeonQueryPromise)?.prototype;
      this.patchHandedOver(queryPromise, NEON_QUERY_METHODS, (proto) => patchNeonQueryPromise(proto, wrap, core.queries));
      return true;
    } catch (e) {
      reportInternalError('instrumentPg', e);
      return false;
    }
  }

  private patchHandedOver(proto: Proto | undefined, methods: string[], patch: (proto: Proto) => void): void {
    patchOnce(proto, (p) => {
      (this.handedOver ??= []).push([p, methods]);
      patch(p);
    });
  }

  /** @neondatabase/serverless: its bundled pg's Pool and Client, neon()'s HTTP queries and their server. */
  private patchNeon(exports: unknown): unknown {
    try {
      this.patchPgModule(exports);
      const neon = (exports as { neon?: unknown }).neon;
      if (typeof neon === 'function') return withExport(exports as Proto, 'neon', wrapNeon(neon as Callback));
    } catch (e) {
      reportInternalError('@neondatabase/serverless hook', e);
    }
    return exports;
  }
  /** Sequelize's entry points: where the application asked for what a later checkout serves. */
  private sequelizeModule(wrap: Wrap) {
    const file = (name: string, targets: (exports: { prototype: Proto } & Proto) => Proto[]) =>
      new InstrumentationNodeModuleFile(
        name,
        ['>=6.0.0 <7'],
        (exports: unknown) => {
          const Cls = exportedClass(exports) as ({ prototype: Proto } & Proto) | undefined;
          if (Cls) for (const target of targets(Cls)) patchOnce(target, (t) => this.core.sequelize.patch(t, wrap), true);
          return exports;
        },
        (exports: unknown) => {
          const Cls = exportedClass(exports) as ({ prototype: Proto } & Proto) | undefined;
          if (Cls) for (const target of targets(Cls)) this.unpatch({ prototype: target }, entryPoints(target));
        }
      );
    return new InstrumentationNodeModuleDefinition('sequelize', ['>=6.0.0 <7'], undefined, undefined, [
      file('sequelize/lib/sequelize.js', (S) => [S.prototype]),
      file('sequelize/lib/model.js', (M) => [M, M.prototype]),
    ]);
  }

  /** Knex's PostgreSQL dialects and its Transaction: where a transaction's checkout was asked for. */
  private knexModule(wrap: Wrap) {
    const file = (name: string, methods: string[], patch: (core: Core, proto: Proto) => void) =>
      new InstrumentationNodeModuleFile(
        name,
        ['>=0.95.0 <4'],
        (exports: unknown) => {
          // Marked per file: a dialect's prototype inherits the mark of the class it extends.
          patchOnce(exportedClass(exports)?.prototype, (proto) => patch(this.core, proto), true);
          return exports;
        },
        (exports: unknown) => this.unpatch(exportedClass(exports), methods)
      );
    const dialect = (name: string) =>
      file(`knex/lib/dialects/${name}/index.js`, ['transaction', ...KNEX_BUILDERS], (core, proto) => {
        core.knex.patchClient(proto, wrap);
        core.knex.patchBuilders(proto, wrap);
      });
    return new InstrumentationNodeModuleDefinition('knex', ['>=0.95.0 <4'], undefined, undefined, [
      file('knex/lib/execution/transaction.js', ['acquireConnection'], (core, proto) => core.knex.patchTransaction(proto, wrap)),
      file('knex/lib/execution/runner.js', ['ensureConnection'], (core, proto) => core.knex.patchRunner(proto, wrap)),
      file('knex/lib/client.js', ['initializePool', ...KNEX_BUILDERS], (core, proto) => {
        core.knex.patchBaseClient(proto, wrap);
        core.knex.patchBuilders(proto, wrap);
      }),
      dialect('postgres'),
      dialect('cockroachdb'),
      dialect('redshift'),
    ]);
  }

  /** tarn (Knex) or sequelize-pool (Sequelize): both export { Pool, TimeoutError }. */
  private resourcePoolModule(
    wrap: Wrap,
    name: string,
    versions: string[],
    methods: string[],
    hooks: (core: Core) => { patch(proto: Proto, wrap: Wrap, TimeoutError: Function | undefined): void }
  ) {
    const parts = (exports: unknown) => {
      const e = (exports as { Pool?: unknown; TimeoutError?: unknown; default?: { Pool?: unknown; TimeoutError?: unknown } } | null) ?? {};
      const Pool = exportedClass(e.Pool) ?? exportedClass(e.default?.Pool);
      const TimeoutError = e.TimeoutError ?? e.default?.TimeoutError;
      return { Pool, TimeoutError: typeof TimeoutError === 'function' ? TimeoutError : undefined };
    };
    return new InstrumentationNodeModuleDefinition(
      name,
      versions,
      (exports: unknown) => {
        const { Pool, TimeoutError } = parts(exports);
        patchOnce(Pool?.prototype, (proto) => hooks(this.core).patch(proto, wrap, TimeoutError));
        return exports;
      },
      (exports: unknown) => this.unpatch(parts(exports).Pool, methods)
    );
  }

  private unpatch(Cls: { prototype: Proto } | undefined, methods: string[]): void {
    this.unpatchProto(Cls?.prototype, methods);
  }

  private unpatchProto(proto: Proto | undefined, methods: string[]): void {
    if (!proto || !proto[PATCHED]) return;
    // Own methods only: a dialect's prototype inherits some of them from the base Client's.
    // Only what this instrumentation wrapped (shimmer marks it).
    const wrapped = (m: string) => Object.prototype.hasOwnProperty.call(proto, m) && (proto[m] as { __wrapped?: unknown } | undefined)?.__wrapped === true;
    for (const m of methods) if (wrapped(m)) this._unwrap(proto, m);
    delete proto[PATCHED];
  }
}

/**
 * Patches a prototype once, marking it: every copy of a library gets its own prototype, and a
 * second instrumentation leaves a marked one alone. `own`: look at the prototype's own mark only.
 */
function patchOnce(proto: Proto | undefined, patch: (proto: Proto) => void, own = false): void {
  if (!proto || (own ? Object.prototype.hasOwnProperty.call(proto, PATCHED) : proto[PATCHED])) return;
  proto[PATCHED] = true;
  patch(proto);
}

/** CommonJS exports the class itself; an ESM namespace has it as `default`. */
function exportedClass(exports: unknown): { prototype: Proto } | undefined {
  const isClass = (v: unknown): v is { prototype: Proto } =>
    typeof v === 'function' && typeof (v as { prototype?: unknown }).prototype === 'object';
  if (isClass(exports)) return exports;
  const d = (exports as { default?: unknown } | null | undefined)?.default;
  return isClass(d) ? d : undefined;
}

/** The Pool and Client classes of a pg-like module, or of its ESM namespace's default. */
function pgLike(module: unknown): { Pool?: unknown; Client?: unknown } | undefined {
  const has = (m: unknown): m is { Pool?: unknown; Client?: unknown } =>
    (typeof m === 'object' || typeof m === 'function') && m !== null && (exportedClass((m as { Pool?: unknown }).Pool) !== undefined || exportedClass((m as { Client?: unknown }).Client) !== undefined);
  if (has(module)) return module;
  const d = (module as { default?: unknown } | null | undefined)?.default;
  return has(d) ? d : undefined;
}

/** The prototype in a class's chain that defines `method` itself. */
function definer(cls: unknown, method: string): Proto | undefined {
  for (let p = exportedClass(cls)?.prototype; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as Proto) {
    if (Object.prototype.hasOwnProperty.call(p, method)) return p;
  }
  return undefined;
}

/**
 * The module's exports with one export replaced. esbuild's CommonJS output defines exports as
 * getters that cannot be redefined: require then gets a copy; an import-in-the-middle namespace
 * takes the assignment.
 */
function withExport(exports: Proto, name: string, value: unknown): Proto {
  if ((exports as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag] === 'Module') {
    exports[name] = value;
    return exports;
  }
  const d = Object.getOwnPropertyDescriptor(exports, name);
  if (!d) return exports;
  if (d.configurable) {
    Object.defineProperty(exports, name, { value, enumerable: d.enumerable, configurable: true, writable: true });
    return exports;
  }
  const all = Object.getOwnPropertyDescriptors(exports);
  all[name] = { value, enumerable: d.enumerable, configurable: true, writable: true };
  return Object.create(Object.getPrototypeOf(exports) as object | null, all) as Proto;
}

