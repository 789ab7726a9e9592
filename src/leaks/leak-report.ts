// Turns a captured acquisition stack into the application's own frames and writes the lines a
// leak report prints. Formatting happens here only, never at checkout time.
import { dirname, sep } from 'node:path';
import type { StackHolder } from '../pool/pool-entry';

// This package's own code (dist/ when installed, src/ under tsx): its frames say nothing useful.
const OWN_DIR = dirname(__dirname) + sep;
// pg, the pools, and the ORMs and query builders that call them: the application's frame is
// the first one outside all of them.
const LIBRARY_MARKERS = [
  'pg',
  'pg-pool',
  'tarn',
  'sequelize-pool',
  'knex',
  'sequelize',
  '@sequelize/core',
  '@sequelize/postgres',
  'objection',
  '@mikro-orm/core',
  '@mikro-orm/knex',
  '@mikro-orm/postgresql',
  'typeorm',
  'kysely',
  'drizzle-orm',
  'pg-promise',
  '@prisma/adapter-pg',
  '@prisma/client',
  'slonik',
].map((name) => `/node_modules/${name}/`);
// Drizzle's published source maps point one level too high: with source maps on, its frames show
// as node_modules/src/... (no package of that name exists).
LIBRARY_MARKERS.push('/node_modules/src/');

function isLibraryFrame(line: string): boolean {
  const unixLine = sep === '/' ? line : line.split(sep).join('/');
  if (line.includes(OWN_DIR)) return true;
  if (LIBRARY_MARKERS.some((m) => unixLine.includes(m))) return true;
  // Node's own modules: node:internal/..., node:async_hooks, ...
  if (frameLocation(line).startsWith('node:')) return true;
  // "at new Promise (<anonymous>)" and the like carry no location
  return /\(<anonymous>\)$/.test(line.trim()) || line.trim() === 'at <anonymous>';
}

/** The application frames of a captured stack, each as "at fn (file:line:col)", outermost last. */
export function applicationFrames(site: StackHolder | undefined): string[] {
  const stack = site?.stack;
  if (typeof stack !== 'string') return [];
  const frames: string[] = [];
  for (const raw of stack.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('at ') || isLibraryFrame(line)) continue;
    frames.push(line);
  }
  return frames;
}

/** "file:line:col" of a frame line. */
export function frameLocation(frame: string): string {
  const m = /\(([^()]*)\)$/.exec(frame);
  return m ? m[1] : frame.replace(/^at (async )?/, '');
}

/** Seconds with one decimal, for messages. */
export function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}

/** The "Taken at:" block of a report: indented frames, or why there are none. */
export function takenAt(site: StackHolder | undefined, frames: string[]): string {
  if (!site) {
    return '\n    (acquisition stack not captured: PG_POOL_OTEL_CAPTURE_STACKS is false or leak detection is off)';
  }
  if (frames.length === 0) return '\n    (no application frames in the acquisition stack)';
  return frames.map((f) => `\n    ${f}`).join('');
}
