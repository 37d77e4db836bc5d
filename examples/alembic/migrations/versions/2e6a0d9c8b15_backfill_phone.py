"""backfill customers.phone

Migrate: a data change, run in batches after the expand phase.

Revision ID: 2e6a0d9c8b15
Revises: d35b8f0e2c47
Create Date: 2024-07-01 09:00:00
"""

from alembic import op

revision = "2e6a0d9c8b15"
down_revision = "d35b8f0e2c47"
branch_labels = None
depends_on = None

BATCH = 10_000


def upgrade() -> None:
    op.execute(f"UPDATE customers SET phone = '' WHERE phone IS NULL AND id < {BATCH}")


def downgrade() -> None:
    pass
