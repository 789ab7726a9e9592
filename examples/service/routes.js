'use strict';
// Request handlers. Two of them carry bugs on purpose (marked BUG): they are the kind of code
// the package exists to catch.
const { pool, statsPool } = require('./db');

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function getProduct({ params }) {
  const { rows } = await pool.query('SELECT sku, name, price_cents FROM products WHERE sku = $1', [params.sku]);
  if (rows.length === 0) throw new HttpError(404, 'unknown product');
  return rows[0];
}

async function createOrder({ body }) {
  const client = await pool.connect();
  const { rows } = await client.query('SELECT price_cents FROM products WHERE sku = $1', [body.sku]);
  // BUG: this error path returns without client.release(); the connection is never given back.
  if (rows.length === 0) throw new HttpError(404, 'unknown product');
  const order = await client.query(
    'INSERT INTO orders (sku, quantity) VALUES ($1, $2) RETURNING id, created_at',
    [body.sku, body.quantity]
  );
  client.release();
  return { ...order.rows[0], total_cents: rows[0].price_cents * body.quantity };
}

async function createTransfer({ body }) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query(
      'UPDATE accounts SET balance_cents = balance_cents - $1 WHERE id = $2 RETURNING balance_cents',
      [body.amount_cents, body.from]
    );
    // BUG: returns inside the open transaction; `finally` hands the connection back without
    // ROLLBACK, and the next request that borrows it commits this half-done transfer.
    if (rows.length === 0 || Number(rows[0].balance_cents) < 0) throw new HttpError(409, 'insufficient funds');
    await client.query('UPDATE accounts SET balance_cents = balance_cents + $1 WHERE id = $2', [
      body.amount_cents,
      body.to,
    ]);
    await client.query('COMMIT');
    return { ok: true };
  } finally {
    client.release();
  }
}

async function dailySalesReport() {
  // The pg_sleep condition stands in for a heavy aggregate: the query takes about 0.8 s.
  const { rows } = await pool.query(
    `SELECT date_trunc('day', created_at) AS day, count(*) AS orders
       FROM orders
      WHERE (SELECT pg_sleep(0.8)::text) IS NOT NULL
      GROUP BY 1 ORDER BY 1 DESC LIMIT 7`
  );
  return rows.map(({ day, orders }) => ({ day, orders: Number(orders) }));
}

async function stats() {
  const { rows } = await statsPool.query('SELECT count(*) AS orders, max(created_at) AS last_order FROM orders');
  return { orders: Number(rows[0].orders), last_order: rows[0].last_order };
}

const routes = [
  ['GET', /^\/products\/([\w-]+)$/, ['sku'], getProduct],
  ['POST', /^\/orders$/, [], createOrder],
  ['POST', /^\/transfers$/, [], createTransfer],
  ['GET', /^\/reports\/daily-sales$/, [], dailySalesReport],
  ['GET', /^\/stats$/, [], stats],
  ['GET', /^\/healthz$/, [], async () => ({ ok: true })],
];

module.exports = { routes, HttpError };
