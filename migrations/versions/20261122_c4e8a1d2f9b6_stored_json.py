"""stored API JSON of rows that never change: case events and closed tasks

case_events.timeline_json and tasks.closed_json are rendered once, when the row is written.
A case's open tasks are found by (case_id, state) instead of reading all its tasks.

Revision ID: c4e8a1d2f9b6
Revises: b3f1c2a9d4e7
Create Date: 2026-11-22 16:40:00

Rows written before this revision keep NULL; the API builds their JSON on read.
"""

import sqlalchemy as sa
from alembic import op

revision = "c4e8a1d2f9b6"
down_revision = "b3f1c2a9d4e7"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timeline_json", sa.Text(), nullable=True))
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_json", sa.Text(), nullable=True))
        batch_op.drop_index("ix_tasks_case_id")
        batch_op.create_index("ix_tasks_case_state", ["case_id", "state"], unique=False)


def downgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_case_state")
        batch_op.create_index("ix_tasks_case_id", ["case_id"], unique=False)
        batch_op.drop_column("closed_json")
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_column("timeline_json")
