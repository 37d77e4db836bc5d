-- Green (v2), written the way a developer would write it for a single deploy.
ALTER TABLE customers RENAME COLUMN email TO email_address;
ALTER TABLE customers ADD COLUMN plan text NOT NULL DEFAULT 'free';
CREATE INDEX customers_plan_created_at_idx ON customers (plan, created_at);
ALTER TABLE customers DROP COLUMN nickname;
