'use strict';
// Example HTTP service: node:http + pg, nothing else. Run it under the package's preload:
//   node --require pg-pool-otel/register examples/service/server.js
const http = require('node:http');
const { pool, statsPool } = require('./db');
const { routes, HttpError } = require('./routes');

const PORT = Number(process.env.PORT || 3000);
const HOST = process.env.HOST || '127.0.0.1';

function readJson(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (data += chunk));
    req.on('end', () => {
      try {
        resolve(data ? JSON.parse(data) : {});
      } catch {
        reject(new HttpError(400, 'invalid JSON'));
      }
    });
    req.on('error', reject);
  });
}

function statusOf(err) {
  if (err instanceof HttpError) return err.status;
  // Pool exhausted or server full: tell the client to retry later.
  if (/timeout exceeded when trying to connect|connection timeout/i.test(err.message)) return 503;
  if (err.code === '53300') return 503;
  return 500;
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  for (const [method, pattern, names, handler] of routes) {
    const match = req.method === method && pattern.exec(url.pathname);
    if (!match) continue;
    const params = Object.fromEntries(names.map((name, i) => [name, match[i + 1]]));
    const body = method === 'POST' ? await readJson(req) : {};
    return handler({ params, body, query: url.searchParams });
  }
  throw new HttpError(404, 'not found');
}

const server = http.createServer((req, res) => {
  handle(req, res).then(
    (result) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(result));
    },
    (err) => {
      const status = statusOf(err);
      if (status === 500) console.error(`${req.method} ${req.url} failed: ${err.message}${err.code ? ` (${err.code})` : ''}`);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: status === 500 ? 'internal error' : err.message }));
    }
  );
});

server.listen(PORT, HOST, () => {
  console.log(`orders-api listening on http://${HOST}:${PORT}`);
});

// Stop taking requests, then close the pools. Leaked connections never come back, so do not
// wait for them forever.
function shutdown(signal) {
  console.log(`${signal}: shutting down`);
  setTimeout(() => process.exit(0), 2000).unref();
  server.close();
  server.closeAllConnections();
  Promise.allSettled([pool.end(), statsPool.end()]).then(() => process.exit(0));
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
