"""login lockout: failed password count and lock expiry on users

Revision ID: b3f1c2a9d4e7
Revises: 8d7c560f0e56
Create Date: 2026-11-22 14:20:00

"""

import sqlalchemy as sa
from alembic import op

revision = "b3f1c2a9d4e7"
down_revision = "8d7c560f0e56"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_logins", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("locked_until", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("locked_until")
        batch_op.drop_column("failed_logins")
