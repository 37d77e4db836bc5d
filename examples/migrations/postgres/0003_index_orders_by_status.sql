-- Hazard: without CONCURRENTLY this blocks every write to orders while the index builds.
SET lock_timeout = '2s';
CREATE INDEX orders_status_idx ON orders (status);
