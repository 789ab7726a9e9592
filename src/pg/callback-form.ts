// pg and pg-pool accept a callback or return a promise. To observe the outcome without changing
// what the caller sees, a promise-style call is turned into a callback-style call and the promise
// is built the way pg builds it. Attaching .then() to the caller's promise instead would mark it
// handled and silence an unhandled rejection the application would otherwise crash on.
import type { Callback } from './pg-types';

type PromiseCtor = PromiseConstructor;

/** Calls `invoke(cb)` and returns a promise settled by cb, as pg does (stack re-captured on error). */
export function promiseFromCallback<T>(
  PromiseImpl: PromiseCtor | undefined,
  invoke: (cb: (err: unknown, value?: T) => void) => void
): Promise<T> {
  const P = PromiseImpl ?? Promise;
  return new P<T>((resolve, reject) => {
    invoke((err, value) => (err ? reject(err) : resolve(value as T)));
  }).catch((err: unknown) => {
    // Same as pg: point the stack at the application rather than at the socket read.
    if (err !== null && typeof err === 'object') Error.captureStackTrace(err);
    throw err;
  });
}

/** Wraps a callback so `before` runs first with the same arguments. */
export function wrapCallback(cb: Callback, before: (args: unknown[]) => void): Callback {
  return function (this: unknown, ...args: unknown[]) {
    before(args);
    return cb.apply(this, args);
  };
}
