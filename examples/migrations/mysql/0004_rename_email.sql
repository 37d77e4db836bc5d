SET SESSION lock_wait_timeout = 5;
ALTER TABLE customers CHANGE email email_address VARCHAR(100) NOT NULL;
