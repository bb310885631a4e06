"""The inbox table as the service created it with ``create_all`` before migrations existed.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The columns a database made before migrations has; ``schema.migrate`` checks them before stamping it 0001.
COLUMNS = (
    "id",
    "event",
    "order_id",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "lease_token",
    "received_at",
    "updated_at",
    "last_error",
    "result",
)


def upgrade() -> None:
    op.create_table(
        "provisioner_inbox",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("order_id", sa.String(256), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_token", sa.String(32), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.UniqueConstraint("event", "order_id", name="uq_provisioner_inbox_event_order"),
    )
    op.create_index("ix_provisioner_inbox_due", "provisioner_inbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_provisioner_inbox_due", table_name="provisioner_inbox")
    op.drop_table("provisioner_inbox")
