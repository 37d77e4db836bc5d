-- The safe way to add a constraint: NOT VALID now (no scan), VALIDATE in its own transaction.
SET lock_timeout = '2s';
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total_cents >= 0) NOT VALID;
