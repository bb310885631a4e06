"""provisioner_inbox.traceparent: the W3C trace context of the delivery, so the worker's attempts (on any replica,
at any later time) continue the delivery's trace.

A nullable column: code of revision 0003 neither writes nor reads it, so both releases run on this schema during
a rollout.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("provisioner_inbox", sa.Column("traceparent", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("provisioner_inbox", "traceparent")
