// The bench's workers run as plain JavaScript: bench/*.ts transpiled (no type check; `npm run
// typecheck` does that) into a directory of their own, so that no TypeScript loader sits in the
// measured path, nor its helpers (tsx's esbuild wraps every closure a function creates in a
// `__name` call, which a wrapper that makes a closure per query pays on every query).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

/** Transpiles bench/<name>.ts for each name into `out` (emptied first), as CommonJS. */
export function transpileBench(names: readonly string[], out: string): void {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const name of names) {
    const source = readFileSync(join(__dirname, `${name}.ts`), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      fileName: `${name}.ts`,
    });
    writeFileSync(join(out, `${name}.js`), outputText);
  }
}
