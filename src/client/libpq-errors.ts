// The native client (pg-native on libpq) reports a failed connection as a plain Error with libpq's
// message and no SQLSTATE, errno or code. These are libpq's and the server's English messages for
// the failures the dashboards and alerts look for, mapped to the error.type the JavaScript client
// gives. A server with another lc_messages, or a message not listed, falls back to the class name.
const MESSAGE_TYPES: ReadonlyArray<readonly [RegExp, string]> = [
  [/too many clients already|remaining connection slots are reserved/i, '53300'],
  [/password authentication failed/i, '28P01'],
  [/the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)/i, '57P03'],
  [/database ".{1,200}" does not exist/i, '3D000'],
  [/role ".{1,200}" does not exist|no pg_hba\.conf entry/i, '28000'],
  [/Connection refused/, 'ECONNREFUSED'],
  [/could not translate host name/i, 'ENOTFOUND'],
  [/server closed the connection unexpectedly/i, 'connection_terminated'],
];

/** error.type for a libpq connection failure message, or undefined when it is not one we know. */
export function libpqConnectionErrorType(message: string): string | undefined {
  for (const [pattern, type] of MESSAGE_TYPES) if (pattern.test(message)) return type;
  return undefined;
}
