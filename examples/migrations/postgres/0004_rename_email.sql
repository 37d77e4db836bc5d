-- Breaking: blue still reads and writes "email". bgmigrate says how to split it.
SET lock_timeout = '2s';
ALTER TABLE customers RENAME COLUMN email TO email_address;
