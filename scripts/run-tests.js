#!/usr/bin/env node
// Runs every test/**/*.test.ts file with node's own test runner (TypeScript through tsx).
// Files run one at a time: each starts its own PostgreSQL, and the machine has two cores.
'use strict';
const { readdirSync, statSync } = require('node:fs');
const { join, relative } = require('node:path');
const { spawnSync } = require('node:child_process');

const root = join(__dirname, '..');
function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    // node_modules: the separately installed pairs of test/fixtures/pg-releases ship tests of their own.
    if (statSync(p).isDirectory()) {
      if (name !== 'node_modules') out.push(...find(p));
    }
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out.sort();
}

const filter = process.argv.slice(2);
const files = find(join(root, 'test')).filter((f) => filter.length === 0 || filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('run-tests: no test files matched', filter.join(' '));
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit' }
);
process.exit(res.status ?? 1);
