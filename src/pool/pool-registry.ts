// Live pools of this process and their unique names. Pools are held weakly: a pool the app drops
// without end() disappears from the metrics when it is collected.
import type { PgPool } from '../pg-types';
import { PoolState } from './pool-state';
import { defaultPoolName, type ServerIdentity } from './pool-identity';

const MAX_RETIRED = 1000;

export class PoolRegistry {
  private readonly states = new WeakMap<PgPool, PoolState>();
  private readonly live = new Set<PoolState>();
  private readonly names = new Set<string>();
  /** Pools registered since start, for pool-per-request detection. */
  created = 0;
  /**
   * Ended pools whose gauges must read zero. The SDK keeps reporting the last value of an
   * attribute set that is no longer observed, so an ended pool is observed as zero until its name
   * is taken by a new pool. Names are reused, so this stays as small as the set of names.
   */
  readonly retired = new Map<string, PoolState>();

  get(pool: PgPool): PoolState | undefined {
    return this.states.get(pool);
  }

  /** The state of a pool, registering it on first sight. Returns [state, isNew]. */
  getOrRegister(pool: PgPool): [PoolState, boolean] {
    const known = this.states.get(pool);
    if (known) return [known, false];
    const state = new PoolState(pool);
    this.states.set(pool, state);
    this.live.add(state);
    this.created++;
    return [state, true];
  }

  /** Names the pool; a second live pool with the same base name gets `#2`, then `#3`, ... */
  identify(state: PoolState, pool: PgPool, server: ServerIdentity): void {
    const base = defaultPoolName(pool, server);
    let name = base;
    for (let i = 2; this.names.has(name); i++) name = `${base}#${i}`;
    this.names.add(name);
    this.retired.delete(name);
    state.identify(name, server);
  }

  unregister(state: PoolState): void {
    if (!this.live.delete(state)) return;
    state.ended = true;
    if (state.resolved) {
      this.names.delete(state.name);
      if (this.retired.size >= MAX_RETIRED) this.retired.clear();
      this.retired.set(state.name, state);
    }
  }

  /** Live pools, dropping those the application let the garbage collector take. */
  *liveStates(): IterableIterator<PoolState> {
    for (const state of this.live) {
      if (state.pool === undefined) {
        this.unregister(state);
        continue;
      }
      yield state;
    }
  }

  get size(): number {
    return this.live.size;
  }
}
