// pg-pool-otel/testing: a leak check for test suites. Call assertNoLeakedCheckouts() in the
// runner's teardown (node:test `after`, Jest/Vitest `afterAll`); it fails listing every checkout
// still outstanding, with its pool, age and the application frames that took it. Works with the
// preload and with a PgPoolInstrumentation created by the app: both list their checkouts in a
// process-wide registry, so this module never loads (and so never starts) the preload.
import { checkoutSources, type OutstandingCheckout, type PoolHolders } from './leaks/checkout-sources';
import { describeGroups, describeUse } from './leaks/holders';
import { frameLocation, seconds } from './leaks/leak-report';
import { warnOnce } from './diag';

export type { HolderGroup, OutstandingCheckout, PoolHolders } from './leaks/checkout-sources';

export interface LeakCheckOptions {
  /** Also fail on checkouts marked with markLongLived(). Default false. */
  includeLongLived?: boolean;
  /** Wait up to this long for checkouts that are being released right now. Default 250 ms. */
  graceMs?: number;
}

/** Every checkout currently outstanding in this process, long-lived ones included. */
export function checkoutsOutstanding(): OutstandingCheckout[] {
  return [...runningSources()].flatMap((s) => s.outstanding());
}

function runningSources(): ReturnType<typeof checkoutSources> {
  const sources = checkoutSources();
  if (sources.size === 0) {
    throw new Error(
      'pg-pool-otel/testing: no pg-pool-otel instrumentation is running in this process, so checkouts cannot ' +
        'be seen. Start the tests with `node --require pg-pool-otel/register` (or NODE_OPTIONS), or create and ' +
        'enable a PgPoolInstrumentation before pg is first loaded. (Jest runs each test file in its own module ' +
        'registry and global object, which instrumentations cannot see: see docs/finding-leaks.md.)'
    );
  }
  return sources;
}

/**
 * Who holds each pool right now: for every pool with checkouts out, its checkouts grouped by
 * acquisition site (first application frame, or the SQL of pool.query()), largest groups first —
 * the view an exhaustion report prints. At most `maxGroups` (20) sites per pool.
 */
export function poolHolders(options: { maxGroups?: number } = {}): PoolHolders[] {
  const maxGroups = options.maxGroups ?? 20;
  return [...runningSources()].flatMap((s) => s.holders?.(maxGroups) ?? []);
}

/** `holders` as text: one block per pool, one line per site followed by its application frames. */
export function describeHolders(holders: PoolHolders[] = poolHolders()): string {
  if (holders.length === 0) return 'no pool has a checkout out';
  return holders.map((h) => `pool "${h.pool}": ${describeUse(h)}\n${describeGroups(h, 10)}`).join('\n');
}

/**
 * Prints describeHolders() to stderr and returns it: call it from a test that hangs on a full pool
 * (e.g. in a timeout handler, or after a `setTimeout`) to see which code holds the connections.
 */
export function printPoolHolders(): string {
  const text = describeHolders();
  process.stderr.write(`pg-pool-otel holders:\n${text}\n`);
  return text;
}

/** The failure message for `leaks`: one block per checkout. */
export function describeOutstanding(leaks: OutstandingCheckout[]): string {
  const blocks = leaks.map((c, i) => {
    const head =
      `${i + 1}) pool "${c.pool}", held ${seconds(c.heldMs)} s` +
      (c.longLived ? ' (marked long-lived)' : '') +
      (c.traceId ? `, trace ${c.traceId}` : '') +
      (c.frames.length ? `, taken at ${frameLocation(c.frames[0])}` : '');
    const frames = c.frames.length
      ? c.frames.map((f) => `\n     ${f}`).join('')
      : c.stackCaptured
        ? '\n     (no application frames in the acquisition stack)'
        : '\n     (acquisition stack not captured: PG_POOL_OTEL_CAPTURE_STACKS is false, leak detection is off, or it was ' +
          'taken past PG_POOL_OTEL_STACK_CAPTURES_PER_SECOND, which has no limit under a test runner)';
    return head + frames;
  });
  const n = leaks.length;
  return `${n} pool checkout${n === 1 ? ' was' : 's were'} never released:\n${blocks.join('\n')}`;
}

function pending(options: LeakCheckOptions): OutstandingCheckout[] {
  return checkoutsOutstanding().filter((c) => options.includeLongLived || !c.longLived);
}

/** Resolves when no checkout is outstanding; rejects with a report of each one otherwise. */
export async function assertNoLeakedCheckouts(options: LeakCheckOptions = {}): Promise<void> {
  const graceMs = options.graceMs ?? 250;
  const until = Date.now() + graceMs;
  let leaks = pending(options);
  // A leaked client holds a socket open, so these short waits never keep a finished process alive.
  while (leaks.length > 0 && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 10).unref());
    leaks = pending(options);
  }
  if (leaks.length === 0) {
    warnIfBlind();
    return;
  }
  const error = new Error(describeOutstanding(leaks));
  error.name = 'LeakedCheckoutError';
  throw error;
}

/** A check that saw no pool at all proves nothing: say so (once) rather than pass silently. */
function warnIfBlind(): void {
  const seen = [...checkoutSources()].reduce((n, s) => n + (s.poolsSeen?.() ?? 1), 0);
  if (seen > 0) return;
  warnOnce(
    'testing:no-pools',
    'pg-pool-otel/testing: the leak check passed but no pg pool has been used under the instrumentation. ' +
      'If the tests do use pools, pg was loaded where the instrumentation cannot see it (loaded before it, ' +
      "or through a test runner's own module loader such as Jest's)."
  );
}
