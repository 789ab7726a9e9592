// "Set a slot, call, restore it": a value that code running inside a call reads synchronously
// (the pool creating a connection, the call a checkout belongs to, where a library was called
// from). Takes the function, its `this` and its arguments, so callers on the hot path allocate no closure.

/** Calls `fn` on `self` with `args` while `owner[key]` is `value`; restores the previous value after. */
export function withSlot<O extends object, K extends keyof O, R>(
  owner: O,
  key: K,
  value: O[K],
  fn: (...args: never[]) => R,
  self?: unknown,
  args?: ArrayLike<unknown>
): R {
  const previous = owner[key];
  owner[key] = value;
  try {
    return (fn as (this: unknown, ...a: unknown[]) => R).apply(self, args as unknown[]);
  } finally {
    owner[key] = previous;
  }
}
