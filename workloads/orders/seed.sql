-- The orders dataset: {{customers}} customers and {{rows}} orders.
-- Variables come from [vars] in the scenario (override with --set vars.rows=N).
CREATE TABLE customers (
    id      bigint PRIMARY KEY,
    name    text NOT NULL,
    country text NOT NULL
);

INSERT INTO customers (id, name, country)
SELECT g, 'customer ' || g, (ARRAY['US','DE','FR','GB','JP','BR','IN','CA'])[1 + g % 8]
FROM generate_series(1, {{customers}}) AS g;

CREATE TABLE orders (
    id               bigserial PRIMARY KEY,
    customer_id      bigint NOT NULL,
    status           text NOT NULL,
    shipping_country text NOT NULL,
    total_cents      integer NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

INSERT INTO orders (customer_id, status, shipping_country, total_cents, created_at)
SELECT 1 + (g::bigint * 7919) % {{customers}},
       (ARRAY['new','paid','shipped','delivered'])[1 + g % 4],
       (ARRAY['US','DE','FR','GB','JP','BR','IN','CA'])[1 + (g * 31) % 8],
       (g::bigint * 7717) % 100000,
       timestamptz '2026-01-01' + g * interval '10 seconds'
FROM generate_series(1, {{rows}}) AS g;

-- Added after the load: one validation scan instead of a check per row.
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
