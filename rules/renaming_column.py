"""renaming-column: RENAME COLUMN (or MySQL CHANGE old new) breaks blue."""

from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

_MYSQL_FIX = """
-- expand (before green): add the new column and keep both in sync for blue's writes
ALTER TABLE {table} ADD COLUMN {new_name} <type> NULL, ALGORITHM=INSTANT;
CREATE TRIGGER {table}_{new_name}_ins BEFORE INSERT ON {table} FOR EACH ROW
  SET NEW.{new_name} = COALESCE(NEW.{new_name}, NEW.{column}), NEW.{column} = COALESCE(NEW.{column}, NEW.{new_name});
CREATE TRIGGER {table}_{new_name}_upd BEFORE UPDATE ON {table} FOR EACH ROW
  SET NEW.{new_name} = IF(NEW.{column} <=> OLD.{column}, NEW.{new_name}, NEW.{column}),
      NEW.{column} = IF(NEW.{column} <=> OLD.{column}, NEW.{new_name}, NEW.{column});
-- migrate, in batches: UPDATE {table} SET {new_name} = {column} WHERE {new_name} IS NULL AND id BETWEEN ? AND ?;
-- deploy green: reads and writes {new_name} only
-- contract, after blue is decommissioned:
DROP TRIGGER {table}_{new_name}_ins; DROP TRIGGER {table}_{new_name}_upd;
ALTER TABLE {table} DROP COLUMN {column};
"""

RULE = Rule(
    id="renaming-column",
    name="Renaming a column breaks blue",
    severity="error",
    category="compat",
    dialects=("postgres", "mysql"),
    ops=(Op.RENAME_COLUMN,),
    squawk=("renaming-column",),
    message=(
        "RENAME COLUMN {table}.{column} TO {new_name}: blue still uses {column}; no single name serves blue and green"
    ),
    why="""
A rename is instant for the database and immediate for every client: the moment it commits, blue's
queries that name the old column fail, and before it runs green's queries that name the new one fail.
There is no deploy order in which both versions work, so the change is breaking. It has to be
rewritten as an expand part (add the new column and keep it in sync with the old one) and a contract
part (drop the old column once blue is gone). MySQL's CHANGE old new ... and RENAME COLUMN are the
same rename.
""",
    fix="""
-- expand (before green): add the new column and keep both in sync while blue and green both write
ALTER TABLE {table} ADD COLUMN {new_name} <type>;
CREATE FUNCTION {table}_sync_{new_name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.{new_name} := COALESCE(NEW.{new_name}, NEW.{column});
    NEW.{column} := COALESCE(NEW.{column}, NEW.{new_name});
  ELSIF NEW.{column} IS DISTINCT FROM OLD.{column} THEN
    NEW.{new_name} := NEW.{column};
  ELSIF NEW.{new_name} IS DISTINCT FROM OLD.{new_name} THEN
    NEW.{column} := NEW.{new_name};
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER {table}_sync_{new_name} BEFORE INSERT OR UPDATE ON {table}
  FOR EACH ROW EXECUTE FUNCTION {table}_sync_{new_name}();
-- migrate, in batches: UPDATE {table} SET {new_name} = {column} WHERE {new_name} IS NULL AND id BETWEEN ? AND ?;
-- deploy green: reads and writes {new_name} only
-- contract, after blue is decommissioned:
DROP TRIGGER {table}_sync_{new_name} ON {table};
DROP FUNCTION {table}_sync_{new_name}();
ALTER TABLE {table} DROP COLUMN {column};
""",
    bad=[
        Example("ALTER TABLE accounts RENAME COLUMN email TO email_address;"),
        Example(
            "ALTER TABLE accounts RENAME COLUMN email TO email_address;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email text);",
        ),
        Example("ALTER TABLE accounts RENAME COLUMN email TO email_address;", dialect="mysql"),
        Example(
            "ALTER TABLE accounts CHANGE email email_address varchar(255) NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email varchar(255) NOT NULL);",
            dialect="mysql",
            note="CHANGE old new ... renames the column",
        ),
    ],
    good=[
        Example(
            "CREATE TABLE invites (id bigint, mail text);\nALTER TABLE invites RENAME COLUMN mail TO email;",
            note="the table is created earlier in the same file",
        ),
        Example(
            "ALTER TABLE accounts ADD COLUMN emial text;\nALTER TABLE accounts RENAME COLUMN emial TO email;",
            note="the column is added in this file: blue never used either name",
        ),
        Example(
            "ALTER TABLE accounts CHANGE email email varchar(320) NOT NULL;",
            setup="CREATE TABLE accounts (id bigint PRIMARY KEY, email varchar(255) NOT NULL);",
            dialect="mysql",
            note="CHANGE with the same name is a MODIFY, not a rename",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    if ctx.phase != "breaking":
        return None
    if ctx.dialect == "mysql":
        how = (
            "CHANGE {column} {new_name}"
            if ctx.change.get("via") == "change"
            else "RENAME COLUMN {column} TO {new_name}"
        )
        return Hit(
            how + " renames {table}.{column}: blue still uses {column}; no single name serves blue and green",
            _MYSQL_FIX,
        )
    return True
