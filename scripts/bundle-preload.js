#!/usr/bin/env node
// Rewrites dist/register.js (the `--require pg-pool-otel/register` preload, as tsc built it) as
// one file with the OpenTelemetry modules it starts inside. A service pays the preload at every
// cold start, and two thirds of that was Node's module loader resolving, reading and wrapping
// about 200 files (docs/benchmarks.md, "cold start"); one file costs a fraction of it.
//
// Left outside the bundle, and loaded from node_modules as before:
// - the libraries the hooks patch (they must be the application's own copies);
// - import-in-the-middle, whose loader half is registered by dist/register.mjs: both halves must
//   share one module instance to talk to each other;
// - the OTLP exporters, loaded only when chosen (the gRPC ones are optional peers).
// Everything the bundle holds is still initialised lazily, in the order the code requires it.
// `pg-pool-otel` itself (dist/index.js) and pg-pool-otel/testing stay unbundled: the state they
// share with the preload lives on globalThis (pool names, checkout sources, instrumentPg).
'use strict';
const { build } = require('esbuild');
const { readFileSync, rmSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const DIST = join(__dirname, '..', 'dist');
const EXTERNAL = [
  'pg',
  'pg-native',
  'pg-pool',
  'pg-cursor',
  'pg-query-stream',
  'knex',
  'sequelize',
  'tarn',
  'sequelize-pool',
  '@neondatabase/serverless',
  'import-in-the-middle',
  '@opentelemetry/exporter-metrics-otlp-*',
  '@opentelemetry/exporter-trace-otlp-*',
  '@grpc/grpc-js',
];

async function main() {
  const entry = join(DIST, 'register.js');
  const source = readFileSync(entry, 'utf8');
  const result = await build({
    stdin: { contents: source, resolveDir: DIST, sourcefile: 'register.js', loader: 'js' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: EXTERNAL,
    write: false,
    logLevel: 'warning',
    legalComments: 'none',
    // Less to parse at every start (about 5 ms of the ~50 the preload adds); names are kept, so an
    // internal error's stack still says which function.
    minifyWhitespace: true,
    minifySyntax: true,
  });
  const out = result.outputFiles[0].text;
  writeFileSync(entry, `// Built by scripts/bundle-preload.js from the compiled preload: do not edit.\n${out}`);
  // tsc's map describes the file before bundling.
  rmSync(`${entry}.map`, { force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
