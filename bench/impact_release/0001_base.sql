-- The schema blue runs against (the history before the release). bench/impact.py creates exactly
-- this in its scratch databases and fills it; `bgmigrate plan --since 0001_base.sql` replays it.
CREATE TABLE plans (
    id int PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE accounts (
    id bigint PRIMARY KEY,
    email text NOT NULL,
    name text,
    balance int,
    plan_id int,
    created_at timestamptz DEFAULT now()
);
