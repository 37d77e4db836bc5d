-- Contract: tightening. Only green writes phone, so this must wait until blue is gone,
-- and SET NOT NULL scans the whole table under ACCESS EXCLUSIVE unless a validated CHECK exists.
SET lock_timeout = '2s';
ALTER TABLE customers ALTER COLUMN phone SET NOT NULL;
