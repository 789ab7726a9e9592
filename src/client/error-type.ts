// Bounded `error.type` values: the SQLSTATE when the server sent one (53300 server full, 57P03
// starting up or shutting down, 28P01 bad password, ...), the errno code for socket errors,
// `timeout` for timeouts, the same values read from libpq's message for the native client, else
// the error's class name.
import type { PgErrorLike } from '../pg/pg-types';
import { libpqConnectionErrorType } from './libpq-errors';

const SQLSTATE = /^[0-9A-Z]{5}$/;
const ERRNO = /^E[A-Z0-9_]{2,30}$/;

export function sqlState(err: unknown): string | undefined {
  const code = (err as PgErrorLike | null)?.code;
  return typeof code === 'string' && SQLSTATE.test(code) ? code : undefined;
}

export function connectionErrorType(err: unknown, timedOut: boolean): string {
  const state = sqlState(err);
  if (state) return state;
  if (timedOut) return 'timeout';
  const e = err as PgErrorLike | null;
  if (typeof e?.code === 'string' && ERRNO.test(e.code)) return e.code;
  const message = typeof e?.message === 'string' ? e.message : '';
  if (/timeout|timed out/i.test(message)) return 'timeout';
  if (/terminated/i.test(message)) return 'connection_terminated';
  return libpqConnectionErrorType(message) ?? errorClass(err);
}

/** The semantic conventions' fallback: the error's class name. */
export function errorClass(err: unknown): string {
  const name = (err as PgErrorLike | null)?.name;
  return typeof name === 'string' && name !== '' && name.length <= 64 ? name : '_OTHER';
}

/** error.type for a failed query. */
export function queryErrorType(err: unknown): string {
  return sqlState(err) ?? (err === true ? '_OTHER' : errorClass(err));
}
