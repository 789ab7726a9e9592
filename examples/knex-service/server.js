'use strict';
// A small Knex service: node:http, Knex on PostgreSQL, no telemetry code. Under the preload its
// pool (tarn, inside Knex) shows on the same service dashboard as a pg.Pool, by the same metric
// names. Run: DATABASE_URL=... node --require pg-pool-otel/register examples/knex-service/server.js
const http = require('node:http');
const knex = require('knex');

if (!process.env.DATABASE_URL) throw new Error('DATABASE_URL is not set (e.g. postgres://user:password@127.0.0.1:5432/shop)');

// The pool is named by its application_name (also what pg_stat_activity shows).
const db = knex({
  client: 'pg',
  connection: { connectionString: process.env.DATABASE_URL, application_name: 'knex-service' },
  pool: { min: 0, max: Number(process.env.PG_POOL_MAX) || 4 },
  acquireConnectionTimeout: 2000,
});

const routes = {
  // The healthy path: a query builder call, which checks out and releases by itself.
  async 'GET /products'() {
    return db('products').select('sku', 'price_cents').orderBy('sku');
  },
  // An order in a transaction. BUG: an unknown product returns without commit or rollback, so the
  // transaction and its connection are never given back (a leak).
  async 'POST /orders'(body) {
    const trx = await db.transaction();
    const product = await trx('products').where({ sku: body.sku }).first();
    if (!product) return { error: 'unknown product' };
    const [order] = await trx('orders').insert({ sku: body.sku, quantity: body.quantity || 1 }).returning('id');
    await trx.commit();
    return order;
  },
  // A slow report: holds a connection for about half a second.
  async 'GET /reports/slow'() {
    return (await db.raw('SELECT pg_sleep(0.5), count(*) AS orders FROM orders')).rows[0];
  },
  // BUG: a typo in a table name (a query error).
  async 'GET /reports/broken'() {
    return db('order').count();
  },
};

async function setup() {
  await db.raw('CREATE TABLE IF NOT EXISTS products (sku text PRIMARY KEY, price_cents integer NOT NULL)');
  await db.raw('CREATE TABLE IF NOT EXISTS orders (id serial PRIMARY KEY, sku text NOT NULL, quantity integer NOT NULL)');
  await db.raw("INSERT INTO products VALUES ('SKU-1', 1299), ('SKU-2', 450) ON CONFLICT DO NOTHING");
}

const server = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (d) => (raw += d));
  req.on('end', async () => {
    const route = routes[`${req.method} ${req.url}`];
    if (!route) return void res.writeHead(404).end();
    try {
      const result = await route(raw ? JSON.parse(raw) : {});
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
    } catch (err) {
      res.writeHead(500).end(String(err.message));
    }
  });
});

setup().then(
  () => server.listen(Number(process.env.PORT) || 3000, '127.0.0.1', () => console.log(`knex-service listening on ${server.address().port}`)),
  (err) => {
    console.error(err);
    process.exit(1);
  }
);
process.once('SIGTERM', () => server.close(() => db.destroy()));
