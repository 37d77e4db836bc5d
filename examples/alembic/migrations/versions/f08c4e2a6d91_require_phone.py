"""customers.phone NOT NULL

Contract: tightening. Only green writes phone, so this must wait until blue is gone, and
SET NOT NULL scans the whole table under ACCESS EXCLUSIVE unless a validated CHECK exists.

Revision ID: f08c4e2a6d91
Revises: 2e6a0d9c8b15
Create Date: 2024-07-08 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "f08c4e2a6d91"
down_revision = "2e6a0d9c8b15"
branch_labels = None
depends_on = None

# A short lock_timeout: an ALTER queued behind a long query fails fast instead of blocking the table.
LOCK_TIMEOUT = "SET lock_timeout = '2s'"


def upgrade() -> None:
    op.execute(LOCK_TIMEOUT)
    op.alter_column("customers", "phone", existing_type=sa.Text(), nullable=False)


def downgrade() -> None:
    op.alter_column("customers", "phone", existing_type=sa.Text(), nullable=True)
