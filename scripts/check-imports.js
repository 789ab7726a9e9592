#!/usr/bin/env node
// Import circles in src/. Between folders, every import counts, type-only ones included: they are
// dependencies of the design too, and the rooms must stack one way. Between files, imports that
// load code count (a type-only import is erased): two classes may name each other's type, as a
// pool entry names its pool and the pool lists its entries. Prints each circle, exits 1 on one.
// `node scripts/check-imports.js [--json] [--root DIR]` (DIR: another tree, for the checker's own test)
'use strict';
const { readFileSync, readdirSync, statSync } = require('node:fs');
const { dirname, join, relative, resolve } = require('node:path');

const rootAt = process.argv.indexOf('--root');
const SRC = rootAt > 0 ? resolve(process.argv[rootAt + 1]) : join(__dirname, '..', 'src');

function files(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (/\.m?ts$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function resolveImport(from, spec) {
  const base = resolve(dirname(from), spec);
  for (const candidate of [base, `${base}.ts`, `${base}.mts`, join(base, 'index.ts')]) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // try the next form
    }
  }
  return undefined;
}

/** Whether an import/export statement brings types only: `import type`, or every name marked `type`. */
function typeOnly(statement) {
  if (/^\s*(?:import|export)\s+type\s/.test(statement)) return true;
  const names = /\{([^}]*)\}/.exec(statement);
  if (!names || /^\s*(?:import|export)\s+[\w*]/.test(statement.replace(/^\s*(import|export)\s+\{/, '$1 {'))) return false;
  const list = names[1].split(',').map((n) => n.trim()).filter(Boolean);
  return list.length > 0 && list.every((n) => n.startsWith('type '));
}

/** The graphs: file -> files it imports (relative specifiers only), all imports and value imports. */
function graphs() {
  const all = new Map();
  const values = new Map();
  for (const f of files(SRC)) {
    const text = readFileSync(f, 'utf8');
    const deps = new Set();
    const valueDeps = new Set();
    const re = /(?:^|\n)(\s*(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"])|require\(\s*['"](\.[^'"]+)['"]\s*\)|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;
    for (const m of text.matchAll(re)) {
      const target = resolveImport(f, m[2] ?? m[3] ?? m[4]);
      if (!target) continue;
      deps.add(target);
      // require() and import() load code; a static statement does unless it names types only.
      if (m[1] === undefined || !typeOnly(m[1])) valueDeps.add(target);
    }
    all.set(f, deps);
    values.set(f, valueDeps);
  }
  return { all, values };
}

/** Strongly connected components with more than one node (or a self-loop): Tarjan. */
function circles(g) {
  let index = 0;
  const stack = [];
  const on = new Set();
  const idx = new Map();
  const low = new Map();
  const out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (g.get(v) ?? new Set()).has(v)) out.push(comp.sort());
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  return out;
}

/** A file's room: its folder under src/; a file directly in src/ is a room of its own. */
const room = (f) => {
  const rel = relative(SRC, f).split('/');
  return rel.length > 1 ? `${rel[0]}/` : rel[0];
};

function main() {
  const { all: g, values } = graphs();
  const fileCircles = circles(values).map((c) => c.map((f) => relative(SRC, f)));
  const folders = new Map();
  const why = new Map();
  for (const [f, deps] of g) {
    for (const d of deps) {
      const a = room(f);
      const b = room(d);
      if (a === b) continue;
      if (!folders.has(a)) folders.set(a, new Set());
      folders.get(a).add(b);
      const key = `${a} -> ${b}`;
      if (!why.has(key)) why.set(key, `${relative(SRC, f)} imports ${relative(SRC, d)}`);
    }
  }
  const folderCircles = circles(folders);
  if (process.argv.includes('--json')) {
    process.stdout.write(JSON.stringify({ files: fileCircles, folders: folderCircles }) + '\n');
  } else {
    for (const c of fileCircles) console.log(`file circle: ${c.join(' <-> ')}`);
    for (const c of folderCircles) {
      const edges = [...why.entries()].filter(([k]) => c.includes(k.split(' -> ')[0]) && c.includes(k.split(' -> ')[1]));
      console.log(`folder circle: ${c.join(' <-> ')}\n${edges.map(([k, v]) => `  ${k}: ${v}`).join('\n')}`);
    }
    if (fileCircles.length + folderCircles.length === 0) console.log('no import circle in src/');
  }
  process.exit(fileCircles.length + folderCircles.length === 0 ? 0 : 1);
}

main();
