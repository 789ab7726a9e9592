// `npm run generate`: regenerates the committed alert rules, dashboards and runbooks from
// src/cli with the default config.
import { join } from 'node:path';
import { run } from '../src/cli/main';

process.exitCode = run(['generate', '--out', join(__dirname, '..')]);
