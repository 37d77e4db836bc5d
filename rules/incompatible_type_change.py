"""incompatible-type-change: ALTER COLUMN TYPE / MySQL MODIFY to a type blue cannot read or write."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

_MYSQL_FIX = """
-- expand (before green): a new column of the new type, kept in sync with the old one
ALTER TABLE {table} ADD COLUMN {column}_new {type} NULL, ALGORITHM=INSTANT;
CREATE TRIGGER {table}_{column}_ins BEFORE INSERT ON {table} FOR EACH ROW
  SET NEW.{column}_new = COALESCE(NEW.{column}_new, CAST(NEW.{column} AS <new type>));
CREATE TRIGGER {table}_{column}_upd BEFORE UPDATE ON {table} FOR EACH ROW
  SET NEW.{column}_new = IF(NEW.{column} <=> OLD.{column}, NEW.{column}_new, CAST(NEW.{column} AS <new type>));
-- (if green writes only {column}_new while blue still reads {column}, convert back the same way)
-- migrate, in batches:
UPDATE {table} SET {column}_new = CAST({column} AS <new type>)
  WHERE {column}_new IS NULL AND id BETWEEN ? AND ?;
-- deploy green: reads and writes {column}_new
-- contract, after blue is decommissioned:
DROP TRIGGER {table}_{column}_ins; DROP TRIGGER {table}_{column}_upd;
ALTER TABLE {table} DROP COLUMN {column};
"""

RULE = Rule(
    id="incompatible-type-change",
    name="Changing a column to an incompatible type breaks blue",
    severity="error",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.ALTER_COLUMN_TYPE,),
    message=(
        "{table}.{column}: {old_type} to {type} is incompatible ({type_reason}); blue reads and writes the old type"
    ),
    why="""
Blue was built for the column's old type: its driver decodes values as that type and it writes values
of that type. Changing to a type from another family (int to text, text to jsonb, timestamp to
timestamptz) changes what blue reads and may reject what it writes, and green built for the new type
cannot run against the old column either. No deploy order serves both, so the change is breaking:
move the data to a new column that both versions keep in sync. When the column's current type is not
in the migration history bgmigrate cannot tell a widening from a breaking change and assumes the
worst. How long the rewrite locks the table is changing-column-type's concern.
""",
    fix="""
-- expand (before green): a new column of the new type, kept in sync with the old one
ALTER TABLE {table} ADD COLUMN {column}_new {type};
CREATE FUNCTION {table}_sync_{column}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.{column} IS DISTINCT FROM OLD.{column} THEN
    NEW.{column}_new := NEW.{column}::{type};          -- blue wrote the old column
  ELSIF NEW.{column}_new IS DISTINCT FROM OLD.{column}_new THEN
    NEW.{column} := NEW.{column}_new::{old_type};      -- green wrote the new one (needs a way back)
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER {table}_sync_{column} BEFORE INSERT OR UPDATE ON {table}
  FOR EACH ROW EXECUTE FUNCTION {table}_sync_{column}();
-- migrate, in batches:
UPDATE {table} SET {column}_new = {column}::{type} WHERE {column}_new IS NULL AND id BETWEEN ? AND ?;
-- deploy green: reads and writes {column}_new
-- contract, after blue is decommissioned:
DROP TRIGGER {table}_sync_{column} ON {table}; DROP FUNCTION {table}_sync_{column}();
ALTER TABLE {table} DROP COLUMN {column};
(Pick the new column's final name now: renaming it back later is another breaking change.)
""",
    bad=[
        Example(
            "ALTER TABLE accounts ALTER COLUMN external_id TYPE text;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, external_id bigint);",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN external_id TYPE text USING external_id::text;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, external_id bigint);",
        ),
        Example(
            "ALTER TABLE events ALTER COLUMN created_at TYPE timestamptz;",
            setup="CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamp);",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN external_id TYPE text;",
            note="the current type is unknown: no history mentions accounts",
        ),
        Example(
            "ALTER TABLE accounts MODIFY external_id varchar(64);",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, external_id bigint);",
            dialect="mysql",
        ),
    ],
    good=[
        Example(
            "ALTER TABLE accounts CHANGE email email_address varchar(255) NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email varchar(255) NOT NULL);",
            dialect="mysql",
            version="8.0.30",
            note="a pure rename via CHANGE: the type stays varchar(255) (renaming-column reports the rename)",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN name TYPE varchar(100);",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, name varchar(50));",
            note="widening: blue's values all fit",
        ),
        Example(
            "ALTER TABLE accounts ALTER COLUMN visits TYPE bigint;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, visits int);",
            note="widening (its table rewrite is changing-column-type's concern)",
        ),
        Example(
            "ALTER TABLE accounts MODIFY visits bigint;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, visits int);",
            dialect="mysql",
        ),
        Example(
            "CREATE TABLE imports (id bigint, payload text);\n"
            "ALTER TABLE imports ALTER COLUMN payload TYPE jsonb USING payload::jsonb;",
            note="the table is created earlier in the same file",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    tc = ctx.type_change
    if tc is None or tc.compat not in ("incompatible", "unknown") or ctx.phase != "breaking":
        return None  # (a column added in this release is expand: blue never read it)
    fix = _MYSQL_FIX if ctx.dialect == "mysql" else None
    if tc.compat == "unknown":
        return Hit(
            "{table}.{column}: change to {type} with the current type unknown ({type_reason}); treated as "
            "incompatible with blue. Put the table's CREATE in the migration history to check it",
            fix,
            fields={"old_type": "<old type>"},
        )
    return Hit(None, fix)
