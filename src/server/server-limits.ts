// The server's connection limits and version. They change only on restart, so they are read once
// per server per process. Every setting here is readable by any login role.

export interface ServerLimits {
  maxConnections: number;
  superuserReserved: number;
  /** PostgreSQL 16's reserved_connections (slots for pg_use_reserved_connections); 0 before 16. */
  reserved: number;
  version: string;
}

// current_setting(name, true) returns NULL instead of failing for a setting the server lacks.
export const LIMITS_SQL = `SELECT current_setting('max_connections') AS max_connections,
  current_setting('superuser_reserved_connections') AS superuser_reserved,
  coalesce(current_setting('reserved_connections', true), '0') AS reserved,
  current_setting('server_version') AS version`;

export function parseLimits(rows: Record<string, unknown>[]): ServerLimits {
  const row = rows[0];
  if (!row) throw new Error('server limits query returned no row');
  const int = (key: string): number => {
    const n = Number(row[key]);
    if (!Number.isInteger(n) || n < 0) throw new Error(`unexpected ${key}: ${String(row[key])}`);
    return n;
  };
  return {
    maxConnections: int('max_connections'),
    superuserReserved: int('superuser_reserved'),
    reserved: int('reserved'),
    version: String(row.version ?? '').slice(0, 64),
  };
}
