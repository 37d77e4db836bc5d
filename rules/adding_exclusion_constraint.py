"""adding-exclusion-constraint: EXCLUDE constraint added to an existing table."""

from migrator.lint.rule import Context, Example, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="adding-exclusion-constraint",
    name="Do not add exclusion constraints to existing tables",
    severity="error",
    category="lock",
    dialects=("postgres",),
    ops=(Op.ADD_CONSTRAINT,),
    squawk=("constraint-missing-not-valid",),
    message=(
        "EXCLUDE constraint on existing table {table} builds its index and checks every row under "
        "ACCESS EXCLUSIVE: reads and writes wait for the whole build, and there is no NOT VALID form"
    ),
    why="""
An exclusion constraint is backed by an index (usually GiST) that PostgreSQL builds, and checks
every existing row against, while holding ACCESS EXCLUSIVE on the table: no reads and no writes
for the whole build. Unlike CHECK and FOREIGN KEY it cannot be added NOT VALID, and unlike UNIQUE
it cannot adopt an index built beforehand with CREATE INDEX CONCURRENTLY. There is no online way
to add it to a table that is in use.
""",
    fix="""
Create the constraint together with a new table and move the data there (dual writes, batched
copy, switch), or run it in a maintenance window with a short lock_timeout:
  CREATE TABLE {table}_new (LIKE {table} INCLUDING ALL, EXCLUDE USING gist (...));
If a plain uniqueness rule would do, use CREATE UNIQUE INDEX CONCURRENTLY + UNIQUE USING INDEX.
""",
    bad=[
        Example(
            "ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap "
            "EXCLUDE USING gist (room_id WITH =, during WITH &&);"
        )
    ],
    good=[
        Example(
            "CREATE TABLE bookings (id bigint PRIMARY KEY, room_id bigint, during tstzrange);\n"
            "ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap "
            "EXCLUDE USING gist (room_id WITH =, during WITH &&);",
            note="bookings is new in this file: the index is built on an empty table",
        ),
        Example("ALTER TABLE bookings ADD CONSTRAINT bookings_room_positive CHECK (room_id > 0) NOT VALID;"),
    ],
)


@RULE.check
def check(ctx: Context) -> bool:
    return ctx.change.get("kind") == "exclude"
