"""validate orders_total_positive

VALIDATE CONSTRAINT reads the whole table under SHARE UPDATE EXCLUSIVE, which lets blue's
reads and writes through. It runs in its own revision (env.py uses transaction_per_migration),
so the brief ACCESS EXCLUSIVE lock of ADD CONSTRAINT is not held while it scans.

Revision ID: c6e2a4f8b013
Revises: 5d7f1b3e9a28
Create Date: 2024-07-22 09:00:00
"""

from alembic import op

revision = "c6e2a4f8b013"
down_revision = "5d7f1b3e9a28"
branch_labels = None
depends_on = None

# A short lock_timeout: an ALTER queued behind a long query fails fast instead of blocking the table.
LOCK_TIMEOUT = "SET lock_timeout = '2s'"


def upgrade() -> None:
    op.execute(LOCK_TIMEOUT)
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive")


def downgrade() -> None:
    pass
