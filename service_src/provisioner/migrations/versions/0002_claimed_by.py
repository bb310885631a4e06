"""claimed_by: which replica (host:pid) last claimed a row, so an operator sees who holds a lease.

Nullable and written only by claims, so code of revision 0001 keeps working on this schema during a rollout.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("provisioner_inbox", sa.Column("claimed_by", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("provisioner_inbox") as batch:
        batch.drop_column("claimed_by")
