-- The shop's first release: new tables, so everything here is expand and lock-free.
CREATE TABLE customers (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    total_cents bigint NOT NULL,
    status      text NOT NULL DEFAULT 'new'
);

-- Indexes on tables created in the same file need no CONCURRENTLY: nobody writes to them yet.
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
