"""adding-not-nullable-field: SET NOT NULL that scans an existing table under ACCESS EXCLUSIVE."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="adding-not-nullable-field",
    name="Prove NOT NULL with a validated CHECK before SET NOT NULL",
    severity="error",
    category="lock",
    dialects=("postgres",),
    ops=(Op.SET_NOT_NULL,),
    squawk=("adding-not-nullable-field",),
    message=(
        "SET NOT NULL on {table}.{column} reads every row of {table} under ACCESS EXCLUSIVE: "
        "reads and writes wait for the full scan"
    ),
    why="""
ALTER COLUMN ... SET NOT NULL takes ACCESS EXCLUSIVE and then scans the whole table to make sure
no row holds NULL; every query on the table waits for the scan. From PostgreSQL 12 the scan is
skipped when a validated CHECK (column IS NOT NULL) constraint already proves it, so the lock is
held only for a moment. That CHECK can be added NOT VALID (no scan) and validated under SHARE UPDATE
EXCLUSIVE (reads and writes continue). bgmigrate recognises such a CHECK from the migration history
and from earlier statements in the same file, and then stays silent. PostgreSQL 18 can also add
the NOT NULL constraint itself NOT VALID (ADD CONSTRAINT n NOT NULL column NOT VALID) and validate it.
(Whether blue may still write NULL is a separate, phase question: see set-not-null-tightening.)
""",
    fix="""
ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_not_null CHECK ({column} IS NOT NULL) NOT VALID;
-- commit; backfill any NULLs; then in a separate transaction:
ALTER TABLE {table} VALIDATE CONSTRAINT {table}_{column}_not_null;
ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL;  -- PostgreSQL 12+: no scan, the CHECK proves it
ALTER TABLE {table} DROP CONSTRAINT {table}_{column}_not_null;
""",
    bad=[
        Example("ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;"),
        Example(
            "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email text);\n"
            "ALTER TABLE accounts ADD CONSTRAINT accounts_email_not_null CHECK (email IS NOT NULL) NOT VALID;\n"
            "ALTER TABLE accounts VALIDATE CONSTRAINT accounts_email_not_null;",
            version="11",
            note="PostgreSQL 11 ignores the validated CHECK and scans anyway",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email text);\n"
            "ALTER TABLE accounts ADD CONSTRAINT accounts_email_not_null CHECK (email IS NOT NULL) NOT VALID;",
            note="a CHECK that was never validated proves nothing",
        ),
    ],
    good=[
        Example(
            "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email text);\n"
            "ALTER TABLE accounts ADD CONSTRAINT accounts_email_not_null CHECK (email IS NOT NULL) NOT VALID;\n"
            "ALTER TABLE accounts VALIDATE CONSTRAINT accounts_email_not_null;",
            note="PostgreSQL 12+: the validated CHECK from an earlier migration proves no NULLs",
        ),
        Example(
            "ALTER TABLE accounts ADD CONSTRAINT accounts_email_not_null CHECK (email IS NOT NULL) NOT VALID;\n"
            "ALTER TABLE accounts VALIDATE CONSTRAINT accounts_email_not_null;\n"
            "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email text);",
            note="the CHECK validated earlier in the same file counts too",
        ),
        Example(
            "CREATE TABLE accounts (id bigint PRIMARY KEY, email text);\n"
            "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;",
            note="accounts is new in this file: there is nothing to scan",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);",
            note="already NOT NULL: PostgreSQL does nothing, no scan",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    if ctx.lock is None or ctx.lock.effect != "scan":
        return None
    if ctx.version_at_least(12):
        return True
    return Hit(
        fix="""
PostgreSQL {version} always scans on SET NOT NULL, even with a validated CHECK. Keep the
constraint as a CHECK instead of a column NOT NULL until you run PostgreSQL 12 or later:
ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_not_null CHECK ({column} IS NOT NULL) NOT VALID;
-- commit, then in a separate transaction:
ALTER TABLE {table} VALIDATE CONSTRAINT {table}_{column}_not_null;
"""
    )
