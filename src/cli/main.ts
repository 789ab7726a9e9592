#!/usr/bin/env node
// `pg-pool-otel generate [--config file.json] [--out dir]`: writes the alert rules, dashboards and
// runbooks for a user's own selectors and thresholds. `pg-pool-otel config` prints the defaults.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DEFAULT_CONFIG, resolveConfig } from './config';
import { generateFiles } from './generate';

const USAGE = `Usage:
  pg-pool-otel generate [--config <file.json>] [--out <dir>]
      Writes <dir>/alerts/pg-pool-otel.rules.yml, <dir>/dashboards/*.json and
      <dir>/docs/runbooks.md (dir defaults to the current directory).
  pg-pool-otel config
      Prints the default generator config as JSON, to copy and edit.`;

export function run(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): number {
  const [command, ...rest] = argv;
  if (command === 'config') {
    out(JSON.stringify(DEFAULT_CONFIG, null, 2) + '\n');
    return 0;
  }
  if (command !== 'generate') {
    out(USAGE + '\n');
    return command === undefined || command === '--help' || command === '-h' ? 0 : 2;
  }
  let configPath: string | undefined;
  let outDir = '.';
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    const value = rest[i + 1];
    if ((arg === '--config' || arg === '--out') && value !== undefined) {
      if (arg === '--config') configPath = value;
      else outDir = value;
      i++;
    } else {
      throw new Error(`unknown or incomplete argument "${arg}"\n${USAGE}`);
    }
  }
  const config = resolveConfig(configPath === undefined ? {} : JSON.parse(readFileSync(configPath, 'utf8')));
  for (const [path, content] of generateFiles(config)) {
    const target = resolve(join(outDir, path));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
    out(`wrote ${target}\n`);
  }
  return 0;
}

if (require.main === module) {
  try {
    process.exitCode = run(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`pg-pool-otel: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
