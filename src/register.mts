// `node --import pg-pool-otel/register app.mjs`: registers the import-in-the-middle loader first,
// so ESM imports of pg and pg-pool are seen, then starts the same preload as --require.
import { register } from 'node:module';
import { createRequire } from 'node:module';
import { createAddHookMessageChannel } from 'import-in-the-middle';

const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);

const require = createRequire(import.meta.url);
require('./register.js');

await waitForAllMessagesAcknowledged();
