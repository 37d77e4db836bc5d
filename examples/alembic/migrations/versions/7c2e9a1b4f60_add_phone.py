"""customers.phone

Expand: a nullable column is invisible to blue.

Revision ID: 7c2e9a1b4f60
Revises: 4b1f0c2a9d3e
Create Date: 2024-06-10 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "7c2e9a1b4f60"
down_revision = "4b1f0c2a9d3e"
branch_labels = None
depends_on = None

# A short lock_timeout: an ALTER queued behind a long query fails fast instead of blocking the table.
LOCK_TIMEOUT = "SET lock_timeout = '2s'"


def upgrade() -> None:
    op.execute(LOCK_TIMEOUT)
    op.add_column("customers", sa.Column("phone", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("customers", "phone")
