#!/usr/bin/env node
// Import circles in src/, between files and between folders (type-only imports included: they
// are dependencies of the design too). Prints each circle and exits 1 when there is one.
// `node scripts/check-imports.js [--json]`
'use strict';
const { readFileSync, readdirSync, statSync } = require('node:fs');
const { dirname, join, relative, resolve } = require('node:path');

const SRC = join(__dirname, '..', 'src');

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

/** The graph: file -> files it imports (relative specifiers only). */
function graph() {
  const g = new Map();
  for (const f of files(SRC)) {
    const text = readFileSync(f, 'utf8');
    const deps = new Set();
    const re = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|require\(\s*['"](\.[^'"]+)['"]\s*\)|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;
    for (const m of text.matchAll(re)) {
      const target = resolveImport(f, m[1] ?? m[2] ?? m[3]);
      if (target) deps.add(target);
    }
    g.set(f, deps);
  }
  return g;
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
  const g = graph();
  const fileCircles = circles(g).map((c) => c.map((f) => relative(SRC, f)));
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
