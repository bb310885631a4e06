"""provisioner_catchup_cursor: how far the catch-up has read Saleor's orders (one row per source).

A new table: code of revision 0002 never reads it, so both releases run on this schema during a rollout.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provisioner_catchup_cursor",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("read_until", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("provisioner_catchup_cursor")
