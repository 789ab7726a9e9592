#!/usr/bin/env node
// `pg-pool-otel generate [--config file.json] [--out dir]`: writes the alert rules, dashboards and
// runbooks for a user's own selectors and thresholds. `pg-pool-otel config` prints the defaults.
// Conventions: --help/-h anywhere prints usage and exits 0; --version/-v; a wrong argument prints
// one line and the usage on stderr and exits 2; a failure while working exits 1.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG, resolveConfig } from './config';
import { generateFiles } from './generate';
import { VERSION } from '../version';

const GENERATE_USAGE = `Usage: pg-pool-otel generate [--config <file.json>] [--out <dir>]
  Writes <dir>/alerts/pg-pool-otel.rules.yml, <dir>/dashboards/*.json and
  <dir>/docs/runbooks.md.
  --config <file.json>  generator config (see \`pg-pool-otel config\`); defaults apply without it
  --out <dir>           where to write (default: the current directory)
  -h, --help            print this help`;

const CONFIG_USAGE = `Usage: pg-pool-otel config
  Prints the default generator config as JSON, to copy and edit.
  -h, --help            print this help`;

const USAGE = `Usage: pg-pool-otel <command> [options]
Commands:
  generate   write alert rules, dashboards and runbooks for your config
  config     print the default generator config as JSON
Options:
  -h, --help      print this help (\`pg-pool-otel <command> --help\` for a command's)
  -v, --version   print the version`;

export interface Output {
  out(s: string): void;
  err(s: string): void;
}

const STD: Output = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/** A wrong argument: reported as one line plus the usage, exit code 2. */
class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string
  ) {
    super(message);
  }
}

function parse(args: string[], usage: string, options: Record<string, { type: 'string' }> = {}): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }).values;
  } catch (err) {
    // node's messages ("Unknown option '--x'", "Option '--out <value>' argument missing") name the
    // argument; only their first sentence is kept, to stay on one line.
    throw new UsageError(String((err as Error).message).split('. ')[0]!, usage);
  }
}

function generate(args: string[], io: Output): number {
  const values = parse(args, GENERATE_USAGE, { config: { type: 'string' }, out: { type: 'string' } });
  if (values.help) {
    io.out(GENERATE_USAGE + '\n');
    return 0;
  }
  const configPath = values.config as string | undefined;
  const outDir = (values.out as string | undefined) ?? '.';
  const config = resolveConfig(configPath === undefined ? {} : JSON.parse(readFileSync(configPath, 'utf8')));
  for (const [path, content] of generateFiles(config)) {
    const target = resolve(join(outDir, path));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
    io.out(`wrote ${target}\n`);
  }
  return 0;
}

function config(args: string[], io: Output): number {
  const values = parse(args, CONFIG_USAGE);
  io.out(values.help ? CONFIG_USAGE + '\n' : JSON.stringify(DEFAULT_CONFIG, null, 2) + '\n');
  return 0;
}

function dispatch(argv: string[], io: Output): number {
  const [command, ...rest] = argv;
  if (command === 'generate') return generate(rest, io);
  if (command === 'config') return config(rest, io);
  if (command === '--help' || command === '-h') {
    io.out(USAGE + '\n');
    return 0;
  }
  if (command === '--version' || command === '-v') {
    io.out(VERSION + '\n');
    return 0;
  }
  if (command === undefined) throw new UsageError('missing command', USAGE);
  throw new UsageError(command.startsWith('-') ? `Unknown option '${command}'` : `Unknown command '${command}'`, USAGE);
}

/** Runs the CLI; returns the exit code (0 done, 1 failed, 2 wrong arguments). Never throws. */
export function run(argv: string[], io: Output = STD): number {
  try {
    return dispatch(argv, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`pg-pool-otel: ${err.message}\n\n${err.usage}\n`);
      return 2;
    }
    io.err(`pg-pool-otel: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

if (require.main === module) process.exitCode = run(process.argv.slice(2));
