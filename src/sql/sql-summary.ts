// db.operation.name, db.collection.name and db.query.summary from query text, following the
// database semantic conventions: the summary is the operation followed by the tables it names,
// e.g. `SELECT users orders`, and is low in cardinality by construction.
import { scan, type Token } from './sql-scanner';

export interface QuerySummary {
  operation: string | undefined;
  /** Set only when the query names exactly one table. */
  collection: string | undefined;
  summary: string | undefined;
}

const OPERATIONS = new Set([
  'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'WITH', 'VALUES', 'TABLE', 'COPY', 'CALL', 'DO',
  'BEGIN', 'START', 'COMMIT', 'END', 'ROLLBACK', 'ABORT', 'SAVEPOINT', 'RELEASE', 'PREPARE', 'EXECUTE',
  'DEALLOCATE', 'DECLARE', 'FETCH', 'MOVE', 'CLOSE', 'CREATE', 'ALTER', 'DROP', 'TRUNCATE', 'GRANT',
  'REVOKE', 'COMMENT', 'LOCK', 'SET', 'SHOW', 'RESET', 'DISCARD', 'LISTEN', 'NOTIFY', 'UNLISTEN',
  'EXPLAIN', 'ANALYZE', 'VACUUM', 'CLUSTER', 'REINDEX', 'REFRESH', 'CHECKPOINT', 'LOAD', 'SECURITY',
]);
const MAIN_STATEMENTS = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE']);
/** Keywords after which a table name follows. */
const TABLE_BEFORE = new Set(['FROM', 'JOIN', 'INTO', 'UPDATE', 'TABLE', 'USING']);
/** Object kinds in DDL: `CREATE TABLE x`, `DROP INDEX y`. */
const DDL_OBJECTS = new Set(['TABLE', 'INDEX', 'VIEW', 'SEQUENCE', 'SCHEMA', 'FUNCTION', 'TYPE', 'EXTENSION', 'TRIGGER', 'DATABASE', 'MATERIALIZED']);
const SKIP_AFTER_TABLE_KEYWORD = new Set(['ONLY', 'LATERAL', 'IF', 'NOT', 'EXISTS', 'UNLOGGED', 'TEMP', 'TEMPORARY']);
const MAX_TARGETS = 3;
const MAX_SUMMARY = 255;

interface Word {
  upper: string;
  text: string;
  quoted: boolean;
  depth: number;
  dotNext: boolean;
  dotPrev: boolean;
}

function words(sql: string): Word[] {
  const out: Word[] = [];
  let depth = 0;
  let prevDot = false;
  let lastWord: Word | undefined;
  for (const t of scan(sql) as Iterable<Token>) {
    if (t.kind === 'space' || t.kind === 'comment') continue;
    if (t.kind === 'punct') {
      const ch = sql[t.start];
      if (ch === '(') depth++;
      else if (ch === ')') depth = Math.max(0, depth - 1);
      if (ch === '.') {
        if (lastWord) lastWord.dotNext = true;
        prevDot = true;
        continue;
      }
      if (ch === ';' && depth === 0 && out.length > 0) break; // first statement only
      prevDot = false;
      lastWord = undefined;
      continue;
    }
    if (t.kind === 'word' || t.kind === 'quoted') {
      const raw = sql.slice(t.start, t.end);
      const quoted = t.kind === 'quoted';
      const text = quoted ? raw.slice(1, -1).replace(/""/g, '"') : raw;
      const w: Word = { upper: quoted ? '' : raw.toUpperCase(), text, quoted, depth, dotNext: false, dotPrev: prevDot };
      out.push(w);
      lastWord = w;
    } else {
      lastWord = undefined;
    }
    prevDot = false;
  }
  return out;
}

/** Reads a possibly qualified name starting at words[i]; returns [name, next index]. */
function qualifiedName(ws: Word[], i: number): [string, number] {
  let name = ws[i]!.text;
  let j = i;
  while (ws[j]!.dotNext && j + 1 < ws.length && ws[j + 1]!.dotPrev) {
    j++;
    name += '.' + ws[j]!.text;
  }
  return [name, j + 1];
}

export function summarize(sql: string): QuerySummary {
  const ws = words(sql);
  if (ws.length === 0 || ws[0]!.quoted || !OPERATIONS.has(ws[0]!.upper)) {
    return { operation: undefined, collection: undefined, summary: undefined };
  }
  let operation = ws[0]!.upper;
  let from = 1;
  if (operation === 'WITH') {
    // The statement after the CTEs decides what the query does.
    const main = ws.findIndex((w, i) => i > 0 && w.depth === 0 && MAIN_STATEMENTS.has(w.upper));
    if (main !== -1) {
      operation = ws[main]!.upper;
      from = main + 1;
    }
  }
  const targets: string[] = [];
  const add = (name: string) => {
    if (!targets.includes(name) && targets.length < MAX_TARGETS) targets.push(name);
  };
  if (['CREATE', 'DROP', 'ALTER', 'TRUNCATE', 'LOCK', 'COPY', 'REFRESH', 'VACUUM', 'ANALYZE', 'CLUSTER', 'REINDEX'].includes(operation)) {
    let i = from;
    while (i < ws.length && !ws[i]!.quoted && (DDL_OBJECTS.has(ws[i]!.upper) || SKIP_AFTER_TABLE_KEYWORD.has(ws[i]!.upper) || ws[i]!.upper === 'OR' || ws[i]!.upper === 'REPLACE' || ws[i]!.upper === 'UNIQUE' || ws[i]!.upper === 'CONCURRENTLY' || ws[i]!.upper === 'VIEW')) i++;
    if (i < ws.length && (ws[i]!.quoted || !OPERATIONS.has(ws[i]!.upper))) add(qualifiedName(ws, i)[0]);
  } else if (operation === 'UPDATE' && from < ws.length) {
    let i = from;
    while (i < ws.length && !ws[i]!.quoted && SKIP_AFTER_TABLE_KEYWORD.has(ws[i]!.upper)) i++;
    if (i < ws.length) add(qualifiedName(ws, i)[0]);
  }
  for (let i = from; i < ws.length - 1; i++) {
    const w = ws[i]!;
    if (w.quoted || !TABLE_BEFORE.has(w.upper)) continue;
    if (w.upper === 'TABLE' && operation !== 'TABLE') continue;
    let j = i + 1;
    while (j < ws.length && !ws[j]!.quoted && SKIP_AFTER_TABLE_KEYWORD.has(ws[j]!.upper)) j++;
    const next = ws[j];
    if (!next || next.dotPrev) continue;
    if (!next.quoted && (OPERATIONS.has(next.upper) || next.upper === 'SET')) continue; // a subquery or keyword
    const [name] = qualifiedName(ws, j);
    add(name);
  }
  if (operation === 'TABLE' && targets.length === 0 && ws[1]) add(qualifiedName(ws, 1)[0]);
  const summary = (targets.length ? `${operation} ${targets.join(' ')}` : operation).slice(0, MAX_SUMMARY);
  return { operation, collection: targets.length === 1 ? targets[0] : undefined, summary };
}
