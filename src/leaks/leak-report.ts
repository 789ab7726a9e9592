// Turns a captured acquisition stack into the application's own frames and writes the lines a
// leak report prints. Formatting happens here only, never at checkout time.
import { basename, dirname, sep } from 'node:path';
import type { StackHolder } from '../pool/checkout-site';
import type { SiteBudget } from '../pool/site-budget';

// This package's own code (dist/ when installed, src/ under tsx): its frames say nothing useful.
// This file is dist/leaks/leak-report.js, or part of dist/register.js in the bundled preload.
const OWN_DIR = (basename(__dirname) === 'leaks' ? dirname(__dirname) : __dirname) + sep;
/** Marks the one library frame printed when a stack holds no application frame. */
export const LIBRARY_FRAME = '[library] ';

type FrameKind = 'app' | 'library' | 'skip';

// The application's frames are everything outside node_modules (any package: ORMs, query
// builders, web frameworks, their plugins), outside Node's own modules and outside this package.
function kindOf(line: string): FrameKind {
  if (line.includes(OWN_DIR)) return 'skip';
  const location = frameLocation(line);
  // Node's own modules (node:internal/..., node:async_hooks), "at new Promise (<anonymous>)", "at async Promise.all (index 0)"
  if (location.startsWith('node:') || location === '<anonymous>' || line === 'at <anonymous>' || /^index \d+$/.test(location)) return 'skip';
  const unix = sep === '/' ? location : location.split(sep).join('/');
  return unix.includes('/node_modules/') ? 'library' : 'app';
}

/**
 * The frames a report prints of a captured stack, each as "at fn (file:line:col)", outermost last:
 * the application frames; when there are none, the nearest library frame, marked LIBRARY_FRAME.
 */
export function applicationFrames(site: StackHolder | undefined): string[] {
  const stack = site?.stack;
  if (typeof stack !== 'string') return [];
  const frames: string[] = [];
  let nearestLibrary: string | undefined;
  for (const raw of stack.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('at ')) continue;
    const kind = kindOf(line);
    if (kind === 'app') frames.push(line);
    else if (kind === 'library') nearestLibrary ??= line;
  }
  if (frames.length === 0 && nearestLibrary) frames.push(`at ${LIBRARY_FRAME}${nearestLibrary.slice(3)}`);
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
export function takenAt(site: StackHolder | undefined, frames: string[], sites: SiteBudget): string {
  if (!site) return `\n    (${sites.missing()})`;
  if (frames.length === 0) return '\n    (no frames in the acquisition stack)';
  return frames.map((f) => `\n    ${f}`).join('');
}
