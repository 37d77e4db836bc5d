"""orders.total_cents >= 0, the safe way: NOT VALID first

NOT VALID takes a brief lock and reads no rows: blue keeps writing. The next revision
validates it, in its own transaction.

Revision ID: 5d7f1b3e9a28
Revises: f08c4e2a6d91
Create Date: 2024-07-15 09:00:00
"""

from alembic import op

revision = "5d7f1b3e9a28"
down_revision = "f08c4e2a6d91"
branch_labels = None
depends_on = None

# A short lock_timeout: an ALTER queued behind a long query fails fast instead of blocking the table.
LOCK_TIMEOUT = "SET lock_timeout = '2s'"


def upgrade() -> None:
    op.execute(LOCK_TIMEOUT)
    op.create_check_constraint("orders_total_positive", "orders", "total_cents >= 0", postgresql_not_valid=True)


def downgrade() -> None:
    op.drop_constraint("orders_total_positive", "orders", type_="check")
