// Replaces every inline literal (strings, dollar-quoted bodies, numbers) with `?`, leaving
// identifiers, keywords, comments and $n placeholders as written. Parameter values never reach
// this function: only the text does.
import { scan } from './sql-scanner';

export function sanitizeSql(sql: string): string {
  let out = '';
  let last = 0;
  for (const t of scan(sql)) {
    if (t.kind !== 'string' && t.kind !== 'number') continue;
    out += sql.slice(last, t.start) + '?';
    last = t.end;
  }
  return last === 0 ? sql : out + sql.slice(last);
}
