SET lock_timeout = '2s';
ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;
