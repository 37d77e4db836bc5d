"""rename customers.email to email_address

Breaking: blue still reads and writes "email". bgmigrate says how to split it.

Revision ID: d35b8f0e2c47
Revises: a91d3c5e7b02
Create Date: 2024-06-24 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "d35b8f0e2c47"
down_revision = "a91d3c5e7b02"
branch_labels = None
depends_on = None

# A short lock_timeout: an ALTER queued behind a long query fails fast instead of blocking the table.
LOCK_TIMEOUT = "SET lock_timeout = '2s'"


def upgrade() -> None:
    op.execute(LOCK_TIMEOUT)
    op.alter_column("customers", "email", new_column_name="email_address", existing_type=sa.Text())


def downgrade() -> None:
    op.alter_column("customers", "email_address", new_column_name="email", existing_type=sa.Text())
