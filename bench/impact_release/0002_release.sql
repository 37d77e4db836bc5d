-- The release, as a developer writes it without thinking about blue-green deploys.
ALTER TABLE accounts ADD COLUMN status text NOT NULL DEFAULT 'active';
ALTER TABLE accounts ADD COLUMN api_key uuid NOT NULL DEFAULT gen_random_uuid();
CREATE INDEX accounts_email_idx ON accounts (email);
ALTER TABLE accounts ADD CONSTRAINT accounts_plan_id_fkey FOREIGN KEY (plan_id) REFERENCES plans (id);
ALTER TABLE accounts RENAME COLUMN name TO full_name;
ALTER TABLE accounts ALTER COLUMN balance SET NOT NULL;
