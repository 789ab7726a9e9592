'use strict';
// The service's connection pools, configured from the environment.
const { Pool } = require('pg');

function intFromEnv(name, fallback) {
  const raw = process.env[name];
  const n = raw === undefined ? NaN : Number(raw);
  return Number.isInteger(n) && n >= 0 ? n : fallback;
}

if (!process.env.DATABASE_URL) {
  throw new Error('DATABASE_URL is not set (e.g. postgres://user:password@127.0.0.1:5432/shop)');
}

// Serves the API. connectionTimeoutMillis makes a request fail fast when every connection is
// busy, instead of queueing forever.
const pool = new Pool({
  connectionString: process.env.DATABASE_URL,
  application_name: 'orders-api:main',
  max: intFromEnv('PG_POOL_MAX', 5),
  connectionTimeoutMillis: intFromEnv('PG_CONNECTION_TIMEOUT_MS', 1000),
  idleTimeoutMillis: 10000,
  // Renew connections now and then, so a failover or DNS change is picked up.
  maxLifetimeSeconds: 1800,
});

// Serves the dashboard's statistics. Someone set a very short idle timeout "to save
// connections": between bursts every connection is closed and opened again (churn).
const statsPool = new Pool({
  connectionString: process.env.STATS_DATABASE_URL || process.env.DATABASE_URL,
  application_name: 'orders-api:stats',
  max: intFromEnv('STATS_POOL_MAX', 4),
  connectionTimeoutMillis: intFromEnv('PG_CONNECTION_TIMEOUT_MS', 1000),
  idleTimeoutMillis: intFromEnv('STATS_IDLE_TIMEOUT_MS', 200),
  maxLifetimeSeconds: 1800,
});

module.exports = { pool, statsPool };
