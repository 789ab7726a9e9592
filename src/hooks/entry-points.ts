// Which methods of Knex and Sequelize are wrapped, as plain data: the instrumentation reads them
// at start-up to declare (and undo) its patches, before the hooks themselves are loaded.
type Proto = Record<string | symbol, unknown>;

/** Knex client methods that make a builder: the application's line is taken there. */
export const KNEX_BUILDERS = ['queryBuilder', 'raw', 'schemaBuilder'];

/** The public async methods of `target` (own, not starting with `_`): the Sequelize entry points wrapped. */
export function entryPoints(target: Proto): string[] {
  const names: string[] = [];
  for (const name of Object.getOwnPropertyNames(target)) {
    if (name.startsWith('_') || name === 'constructor') continue;
    const d = Object.getOwnPropertyDescriptor(target, name);
    // Once wrapped, the original is the wrapper's __original (shimmer): unwrapping lists the same names.
    const fn = (d?.value as { __original?: unknown } | undefined)?.__original ?? d?.value;
    if (typeof fn === 'function' && fn.constructor?.name === 'AsyncFunction') names.push(name);
  }
  return names;
}
