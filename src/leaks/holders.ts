// Who holds a pool: its current checkouts grouped by acquisition site (the first application frame
// of the captured stack, or the SQL of a pool.query() call), largest groups first. Shared by the
// exhaustion report, its span event and gauge, and pg-pool-otel/testing's describeHolders().
import { sep } from 'node:path';
import { type PoolEntry } from '../pool/pool-entry';
import { PoolQueryCall } from '../pool/checkout-request';
import type { TrackedPool } from '../pool/tracked-pool';
import { applicationFrames, seconds } from './leak-report';

/** Checkouts of one site. */
export interface HolderGroup {
  /** The site: "fn (file:line:col)" relative to the working directory, or "pool.query: SQL". */
  site: string;
  /** Connections it holds now. */
  count: number;
  /** How long its oldest checkout has been held, in milliseconds. */
  oldestMs: number;
  /** Application frames of its oldest checkout ("at fn (file:line:col)"); empty for pool.query() and uncaptured stacks. */
  frames: string[];
  /** Trace id of the span active at its oldest checkout, if any. */
  traceId?: string;
}

/** The holders of one pool. */
export interface PoolHolders {
  /** db.client.connection.pool.name */
  pool: string;
  /** Connections checked out now. */
  held: number;
  /** The most connections the pool opens, when it has a limit. */
  max?: number;
  /** Checkout requests queued now. */
  pending: number;
  /** The largest groups, largest first. */
  groups: HolderGroup[];
  /** Sites left out of `groups`, and the connections they hold. */
  otherSites: number;
  otherCount: number;
}

export const NOT_CAPTURED = '(stack not captured)';
export const NO_APP_FRAMES = '(no application frames)';

const CWD = process.cwd() + sep;
const CWD_URL = `file://${process.cwd()}/`;

/** "fn (file:line:col)" of a frame line, the path relative to the working directory when under it. */
function shortFrame(frame: string): string {
  return frame.replace(/^at (async )?/, '').split(CWD_URL).join('').split(CWD).join('');
}

/** The entry's site, formatted once per checkout (cached on the entry until its next checkout). */
export function siteKeyOf(entry: PoolEntry): string {
  let key = entry.siteKey;
  if (key === undefined) {
    const site = entry.site;
    if (site instanceof PoolQueryCall) key = `pool.query: ${site.sql}`;
    else if (!site) key = NOT_CAPTURED;
    else {
      const first = applicationFrames(site)[0];
      key = first ? shortFrame(first) : NO_APP_FRAMES;
    }
    entry.keySite(key);
  }
  return key;
}

/** The pool's checkouts grouped by site; at most `maxGroups` groups, the rest summed up. */
export function holdersOf(pool: TrackedPool, now: number, maxGroups: number): PoolHolders {
  // Checkouts are in checkout order: the first of each site is its oldest.
  const bySite = new Map<string, { count: number; oldest: PoolEntry }>();
  for (const entry of pool.checkedOut) {
    const key = siteKeyOf(entry);
    const g = bySite.get(key);
    if (g) g.count++;
    else bySite.set(key, { count: 1, oldest: entry });
  }
  const sorted = [...bySite].sort(([, a], [, b]) => b.count - a.count || a.oldest.acquiredAt - b.oldest.acquiredAt);
  const groups = sorted.slice(0, maxGroups).map(([site, { count, oldest }]): HolderGroup => {
    const g: HolderGroup = {
      site,
      count,
      oldestMs: now - oldest.acquiredAt,
      frames: oldest.site instanceof PoolQueryCall ? [] : applicationFrames(oldest.site),
    };
    const traceId = oldest.spanContext?.traceId;
    if (traceId) g.traceId = traceId;
    return g;
  });
  const rest = sorted.slice(maxGroups);
  const raw = pool.pool;
  const counts = raw ? pool.kind.counts(raw) : undefined;
  const out: PoolHolders = {
    pool: pool.name,
    held: pool.checkedOut.size,
    pending: counts?.pending ?? 0,
    groups,
    otherSites: rest.length,
    otherCount: rest.reduce((n, [, g]) => n + g.count, 0),
  };
  if (counts?.max !== undefined) out.max = counts.max;
  return out;
}

/**
 * The holders view: one line per site (count, site, oldest hold), then up to `maxFrames` of the
 * application frames of its oldest checkout. `indent` prefixes every line.
 */
export function describeGroups(h: PoolHolders, maxFrames: number, indent = '  '): string {
  const lines: string[] = [];
  for (const g of h.groups) {
    const trace = g.traceId ? `, trace ${g.traceId}` : '';
    lines.push(`${indent}${g.count} held at ${g.site}, the oldest for ${seconds(g.oldestMs)} s${trace}`);
    for (const f of g.frames.slice(0, maxFrames)) lines.push(`${indent}    ${f}`);
  }
  if (h.otherSites > 0) {
    lines.push(`${indent}${h.otherCount} held by ${h.otherSites} other site${h.otherSites === 1 ? '' : 's'}`);
  }
  return lines.join('\n');
}

/** "N of M connections checked out, K requests queued". */
export function describeUse(h: PoolHolders): string {
  const of = h.max !== undefined ? ` of ${h.max}` : '';
  return `${h.held}${of} connections checked out, ${h.pending} request${h.pending === 1 ? '' : 's'} queued`;
}
