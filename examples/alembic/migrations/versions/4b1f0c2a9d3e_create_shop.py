"""create the shop: customers and orders

The first release: new tables, so everything here is expand and lock-free. Indexes on tables
created in the same revision need no CONCURRENTLY: nobody writes to them yet.

Revision ID: 4b1f0c2a9d3e
Revises:
Create Date: 2024-06-03 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "4b1f0c2a9d3e"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("customer_id", sa.BigInteger(), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), server_default="new", nullable=False),
    )
    op.create_index("orders_customer_id_idx", "orders", ["customer_id"])


def downgrade() -> None:
    op.drop_table("orders")
    op.drop_table("customers")
