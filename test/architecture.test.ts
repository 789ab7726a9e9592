// The house's imports run one way: no circle between folders of src/ (type-only imports included)
// nor between files (imports that load code), checked by scripts/check-imports.js, which is shown
// to find both kinds in a tree made to have them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CHECK = join(__dirname, '..', 'scripts', 'check-imports.js');
const run = (...args: string[]) => spawnSync(process.execPath, [CHECK, '--json', ...args], { encoding: 'utf8' });

test('src/ has no import circle between folders or files', () => {
  const r = run();
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { files: [], folders: [] });
});

test('the checker finds a folder circle made by a type import and a file circle made by value imports', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'check-imports-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const d of ['low', 'high']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'high', 'a.ts'), "import { b } from '../low/b';\nexport const a = b;\n");
  writeFileSync(join(dir, 'low', 'b.ts'), "import type { a } from '../high/a';\nexport const b = 1;\nexport type A = typeof a;\n");
  writeFileSync(join(dir, 'low', 'c.ts'), "import { d } from './d';\nexport const c = d;\n");
  writeFileSync(join(dir, 'low', 'd.ts'), "import { c } from './c';\nexport const d = () => c;\n");
  writeFileSync(join(dir, 'low', 'e.ts'), "import { type f } from './f';\nexport const e = 1;\nexport type F = typeof f;\n");
  writeFileSync(join(dir, 'low', 'f.ts'), "import { e } from './e';\nexport const f = e;\n");
  const r = run('--root', dir);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { files: [['low/c.ts', 'low/d.ts']], folders: [['high/', 'low/']] });
});
