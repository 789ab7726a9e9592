// The version reported as otel_scope_version is the package's own.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { VERSION } from '../src/version';

it('VERSION matches package.json', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  assert.equal(VERSION, (require('../package.json') as { version: string }).version);
});
