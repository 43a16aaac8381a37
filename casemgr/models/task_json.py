"""A task's summary as the API shows it (API.md), kept with the row once the task is closed.

A closed task never changes again, so its summary is rendered when the row is written
closed, and the case document splices the stored text unparsed (casemgr.web.api.json_sql):
a case at its 500th loop has 499 closed tasks, and building their JSON on every read cost
more than the step. Rendered by a mapper hook, so every way a task is closed (completed,
cancelled by the process) and any later write of a closed row keeps it true.
"""

from __future__ import annotations

import json
from decimal import Decimal

from sqlalchemy import event, inspect, select
from sqlalchemy.orm.util import identity_key

from casemgr.models.cases import TaskRecord
from casemgr.models.types import iso
from casemgr.models.users import User


def money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def task_summary(row: TaskRecord, assignee: str | None, completed_by: str | None) -> dict:
    """The contract's task summary, plus the inbox's customer, amount and four-eyes columns."""
    return {
        "id": row.id,
        "case_id": row.case_id,
        "case_type": row.case_type_key,
        "name": row.name,
        "title": row.title,
        "role": row.role,
        "assignee": assignee,
        "state": row.state,
        "due_at": iso(row.due_at),
        "completed_by": completed_by,
        "completed_at": iso(row.completed_at),
        "created_at": iso(row.created_at),
        "customer_number": row.customer_number,
        "customer_name": row.customer_name,
        "amount": money(row.amount),
        "form_key": row.form_key,
        "four_eyes": list(row.four_eyes or []),
    }


@event.listens_for(TaskRecord, "before_update")
def _keep_closed_summary(_mapper, connection, row: TaskRecord) -> None:
    if row.state == "open":
        row.closed_json = None
        return
    assignee = _username(row, "assignee", row.assignee_id, connection)
    completed_by = _username(row, "completed_by", row.completed_by_id, connection)
    row.closed_json = json.dumps(task_summary(row, assignee, completed_by))


def _username(row: TaskRecord, relation: str, user_id: int | None, connection) -> str | None:
    """The name behind a user reference, without a lazy load inside the flush. The id is
    the truth (a relationship loaded before the id changed is stale): the object the row
    holds when it is that user, else the session's copy, else one small query."""
    if user_id is None:
        return None
    state = inspect(row)
    held = state.dict.get(relation)
    if held is None or held.id != user_id:
        key = identity_key(User, user_id)
        held = state.session.identity_map.get(key) if state.session is not None else None
    if held is not None and "username" in inspect(held).dict:
        return held.username
    users = User.__table__
    return connection.execute(select(users.c.username).where(users.c.id == user_id)).scalar()
