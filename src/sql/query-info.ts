// What a query's text says, computed once per distinct text: applications send the same few
// hundred statements over and over, so a small cache turns parsing into a map lookup.
import { sanitizeSql } from './sanitize';
import { summarize } from './sql-summary';

export interface QueryInfo {
  readonly text: string;
  readonly operation: string | undefined;
  readonly collection: string | undefined;
  readonly summary: string | undefined;
  readonly spanName: string;
  /** Text with literals replaced by `?`, computed on first use. */
  sanitized(): string;
  /** The last (base, shape) pair this text was recorded under: one pool runs most texts. */
  lastOwner: object | undefined;
  lastShape: object | undefined;
}

const MAX_ENTRIES = 2000;
const MAX_TEXT = 64 * 1024;
const cache = new Map<string, QueryInfo>();

export function queryInfo(text: string): QueryInfo {
  const hit = cache.get(text);
  if (hit) return hit;
  const s = text.length <= MAX_TEXT ? summarize(text) : { operation: undefined, collection: undefined, summary: undefined };
  let sanitized: string | undefined;
  const info: QueryInfo = {
    text,
    operation: s.operation,
    collection: s.collection,
    summary: s.summary,
    spanName: s.summary ?? 'postgresql',
    lastOwner: undefined,
    lastShape: undefined,
    sanitized: () => (sanitized ??= text.length <= MAX_TEXT ? sanitizeSql(text) : sanitizeSql(text.slice(0, MAX_TEXT))),
  };
  // Dynamic SQL (ids inlined in the text) would grow the cache without bound: start over instead.
  if (cache.size >= MAX_ENTRIES) cache.clear();
  cache.set(text, info);
  return info;
}
