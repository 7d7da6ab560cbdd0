-- The shop's first table. run-migrations applies each file once, in order, in a transaction,
-- and records it in its history table (sqlx's _sqlx_migrations).
CREATE TABLE orders (
    id BIGSERIAL PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    total_cents BIGINT NOT NULL CHECK (total_cents >= 0)
);
