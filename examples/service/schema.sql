-- Schema of the example service. Safe to run again: every statement is idempotent.
CREATE TABLE IF NOT EXISTS products (
  sku         text PRIMARY KEY,
  name        text NOT NULL,
  price_cents integer NOT NULL
);

CREATE TABLE IF NOT EXISTS orders (
  id         bigserial PRIMARY KEY,
  sku        text NOT NULL REFERENCES products,
  quantity   integer NOT NULL CHECK (quantity > 0),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS accounts (
  id            integer PRIMARY KEY,
  balance_cents bigint NOT NULL
);

INSERT INTO products (sku, name, price_cents)
SELECT 'SKU-' || i, 'Product ' || i, 100 + i FROM generate_series(1, 100) AS i
ON CONFLICT DO NOTHING;

INSERT INTO accounts (id, balance_cents)
SELECT i, 10000 FROM generate_series(1, 1000) AS i
ON CONFLICT DO NOTHING;
