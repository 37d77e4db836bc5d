"""adding-foreign-key-constraint: a validated foreign key added to an existing table."""

from migrator.lint.fixes import not_valid
from migrator.lint.rule import Context, Example, Hit, Rule
from migrator.sql.changes import Op

RULE = Rule(
    id="adding-foreign-key-constraint",
    name="Add foreign keys NOT VALID, then validate",
    severity="error",
    category="lock",
    dialects=("postgres",),
    ops=(Op.ADD_CONSTRAINT, Op.ADD_COLUMN),
    squawk=("adding-foreign-key-constraint", "constraint-missing-not-valid"),
    message=(
        "foreign key on existing table {table} is checked against {references} while both tables are locked "
        "(SHARE ROW EXCLUSIVE): writes to both wait for a full scan of {table}"
    ),
    why="""
Adding a foreign key locks the referencing table and the referenced table in SHARE ROW EXCLUSIVE
mode (INSERT, UPDATE and DELETE on both wait; reads continue) and then reads every row of the
referencing table to check it has a match. On a large table writes to both tables stop for the
whole scan. With NOT VALID the constraint is only recorded: new and updated rows are checked from
then on, existing rows are not, and the locks are released at once. A later
VALIDATE CONSTRAINT checks the old rows under SHARE UPDATE EXCLUSIVE, which lets reads and writes
continue. ADD COLUMN ... REFERENCES has no NOT VALID form: when the new column has a non-null
default, every row holds that value and the foreign key is checked under the lock; without a
default the column is all NULL and PostgreSQL marks the key valid without reading the table.
""",
    fix="""
{fixed_sql}
-- commit, then in a separate transaction (reads and writes continue):
ALTER TABLE {table} VALIDATE CONSTRAINT {constraint_name};
""",
    bad=[
        Example(
            "ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id);"
        ),
        Example(
            "ALTER TABLE accounts ADD COLUMN plan_id bigint NOT NULL DEFAULT 1 REFERENCES plans (id);",
            note="every row gets plan_id = 1, which is checked against plans under the lock",
        ),
    ],
    good=[
        Example(
            "ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) "
            "REFERENCES accounts (id) NOT VALID;"
        ),
        Example(
            "ALTER TABLE orders ADD COLUMN coupon_id bigint REFERENCES coupons (id);",
            note="the new column is all NULL: the key is marked valid without reading orders",
        ),
        Example(
            "ALTER TABLE orders ADD COLUMN coupon_id bigint;\n"
            "ALTER TABLE orders ADD CONSTRAINT orders_coupon_fk FOREIGN KEY (coupon_id) "
            "REFERENCES coupons (id) NOT VALID;",
        ),
        Example(
            "CREATE TABLE orders (id bigint PRIMARY KEY, account_id bigint);\n"
            "ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id);",
            note="orders is new in this file: there are no rows to check",
        ),
        Example(
            "CREATE TABLE orders (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts (id));",
            note="a foreign key declared with the table checks no existing rows",
        ),
    ],
)


@RULE.check
def check(ctx: Context):
    ch = ctx.change
    if ch.op == Op.ADD_COLUMN:
        if not ch.get("references") or ctx.lock is None or ctx.lock.effect == "none":
            return None  # all NULL: PostgreSQL marks the foreign key valid without reading the table
        return Hit(
            "ADD COLUMN {column} ... DEFAULT ... REFERENCES {references} on existing table {table}: every row gets "
            "the default, which is checked against {references} while both tables are locked (writes blocked)",
            fix="""
ALTER TABLE {table} ADD COLUMN {column} <type> DEFAULT <value>;  -- no REFERENCES here
ALTER TABLE {table} ADD CONSTRAINT <name> FOREIGN KEY ({column}) REFERENCES {references} (...) NOT VALID;
-- commit, then in a separate transaction:
ALTER TABLE {table} VALIDATE CONSTRAINT <name>;
""",
        )
    if ch.get("kind") != "foreign_key" or ch.get("not_valid"):
        return None
    table = (ch.table or "").rsplit(".", 1)[-1]
    name = ch.get("constraint") or f"{table}_{'_'.join(ch.get('columns') or ['col'])}_fkey"  # PostgreSQL's name
    return Hit(fields={"fixed_sql": not_valid(ctx.statement.sql), "constraint_name": name})
