SET SESSION lock_wait_timeout = 5;
-- INSTANT on MySQL 8.0.12+: metadata only.
ALTER TABLE customers ADD COLUMN phone VARCHAR(32) NULL, ALGORITHM=INSTANT;
