-- Migrate: a data change. Run it in batches after the expand phase.
UPDATE customers SET phone = '' WHERE phone IS NULL AND id < 10000;
