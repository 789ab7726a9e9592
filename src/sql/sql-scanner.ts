// A single-pass SQL lexer, enough to find keywords, identifiers and literals. It never throws:
// unterminated literals run to the end of the text.

export type TokenKind = 'word' | 'quoted' | 'string' | 'number' | 'param' | 'punct' | 'comment' | 'space';

export interface Token {
  kind: TokenKind;
  start: number;
  end: number;
}

const isWordStart = (c: number) =>
  (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
const isWordPart = (c: number) => isWordStart(c) || (c >= 48 && c <= 57) || c === 36;
const isDigit = (c: number) => c >= 48 && c <= 57;

export function* scan(sql: string): Generator<Token> {
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const start = i;
    const c = sql.charCodeAt(i);
    const next = i + 1 < n ? sql.charCodeAt(i + 1) : 0;
    if (c === 32 || c === 9 || c === 10 || c === 13 || c === 12) {
      while (i < n && /\s/.test(sql[i]!)) i++;
      yield { kind: 'space', start, end: i };
    } else if (c === 45 && next === 45) {
      const nl = sql.indexOf('\n', i);
      i = nl === -1 ? n : nl;
      yield { kind: 'comment', start, end: i };
    } else if (c === 47 && next === 42) {
      const close = sql.indexOf('*/', i + 2);
      i = close === -1 ? n : close + 2;
      yield { kind: 'comment', start, end: i };
    } else if (c === 39) {
      i = endOfQuoted(sql, i, false);
      yield { kind: 'string', start, end: i };
    } else if ((c === 69 || c === 101) && next === 39) {
      // E'...' allows backslash escapes
      i = endOfQuoted(sql, i + 1, true);
      yield { kind: 'string', start, end: i };
    } else if ((c === 66 || c === 98 || c === 88 || c === 120 || c === 85 || c === 117) && next === 39) {
      // B'0101', X'1F', U&'...' style prefixes
      i = endOfQuoted(sql, i + 1, false);
      yield { kind: 'string', start, end: i };
    } else if (c === 34) {
      let j = i + 1;
      while (j < n) {
        if (sql.charCodeAt(j) === 34) {
          if (sql.charCodeAt(j + 1) === 34) j += 2;
          else break;
        } else j++;
      }
      i = Math.min(n, j + 1);
      yield { kind: 'quoted', start, end: i };
    } else if (c === 36 && isDigit(next)) {
      i++;
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
      yield { kind: 'param', start, end: i };
    } else if (c === 36) {
      // $tag$ ... $tag$ dollar quoting
      const m = /^\$([A-Za-z_][A-Za-z_0-9]*)?\$/.exec(sql.slice(i, i + 64));
      if (m) {
        const tag = m[0];
        const close = sql.indexOf(tag, i + tag.length);
        i = close === -1 ? n : close + tag.length;
        yield { kind: 'string', start, end: i };
      } else {
        i++;
        yield { kind: 'punct', start, end: i };
      }
    } else if (isDigit(c) || (c === 46 && isDigit(next))) {
      const m = /^(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][+-]?\d+)?\.?)/.exec(
        sql.slice(i, i + 64)
      );
      i += m && m[0].length > 0 ? m[0].length : 1;
      yield { kind: 'number', start, end: i };
    } else if (isWordStart(c)) {
      i++;
      while (i < n && isWordPart(sql.charCodeAt(i))) i++;
      yield { kind: 'word', start, end: i };
    } else {
      i++;
      yield { kind: 'punct', start, end: i };
    }
  }
}

function endOfQuoted(sql: string, openQuote: number, backslashEscapes: boolean): number {
  const n = sql.length;
  let j = openQuote + 1;
  while (j < n) {
    const c = sql.charCodeAt(j);
    if (backslashEscapes && c === 92) {
      j += 2;
    } else if (c === 39) {
      if (sql.charCodeAt(j + 1) === 39) j += 2;
      else return j + 1;
    } else j++;
  }
  return n;
}
