"""index orders by status

Hazard: without CONCURRENTLY this blocks every write to orders while the index builds.
The safe form is op.create_index(..., postgresql_concurrently=True) inside
op.get_context().autocommit_block().

Revision ID: a91d3c5e7b02
Revises: 7c2e9a1b4f60
Create Date: 2024-06-17 09:00:00
"""

from alembic import op

revision = "a91d3c5e7b02"
down_revision = "7c2e9a1b4f60"
branch_labels = None
depends_on = None

# A short lock_timeout: an ALTER queued behind a long query fails fast instead of blocking the table.
LOCK_TIMEOUT = "SET lock_timeout = '2s'"


def upgrade() -> None:
    op.execute(LOCK_TIMEOUT)
    op.create_index("orders_status_idx", "orders", ["status"])


def downgrade() -> None:
    op.drop_index("orders_status_idx", table_name="orders")
