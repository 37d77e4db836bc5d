"""green (v2): email becomes email_address, a required plan, an index by plan, nickname goes

Written the way a developer writes it for a single deploy; `bgmigrate plan` splits it into expand
(blue keeps working), a backfill, and contract (after blue is decommissioned).

Revision ID: 9d4b2f61c8e7
Revises: 3a7c1e90b2d4
Create Date: 2024-09-16 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "9d4b2f61c8e7"
down_revision = "3a7c1e90b2d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("customers", "email", new_column_name="email_address", existing_type=sa.Text())
    op.add_column("customers", sa.Column("plan", sa.Text(), server_default="free", nullable=False))
    op.create_index("customers_plan_created_at_idx", "customers", ["plan", "created_at"])
    op.drop_column("customers", "nickname")


def downgrade() -> None:
    op.add_column("customers", sa.Column("nickname", sa.Text(), nullable=True))
    op.drop_index("customers_plan_created_at_idx", table_name="customers")
    op.drop_column("customers", "plan")
    op.alter_column("customers", "email_address", new_column_name="email", existing_type=sa.Text())
