"""the shop as blue (v1) knows it: customers with email and nickname

Revision ID: 3a7c1e90b2d4
Revises:
Create Date: 2024-09-02 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "3a7c1e90b2d4"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("nickname", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("customers")
