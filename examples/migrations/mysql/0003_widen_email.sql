SET SESSION lock_wait_timeout = 5;
-- 60 to 100 characters crosses 255 bytes in utf8mb4: the length prefix grows, the table is copied.
ALTER TABLE customers MODIFY email VARCHAR(100) NOT NULL;
