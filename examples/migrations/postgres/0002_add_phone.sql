-- Expand: a nullable column is invisible to blue. The lock is instant but still queues,
-- so a short lock_timeout keeps a long-running query from turning it into an outage.
SET lock_timeout = '2s';
ALTER TABLE customers ADD COLUMN phone text;
