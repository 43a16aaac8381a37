"""The case document of API.md: the answer to GET /cases/{id}, to a start and to a completion.

Tasks and events are read as plain column rows, not ORM objects: a case at its 500th loop
has ~1,500 events and 500 tasks, and building (then expiring) an object for each made the
answer cost ~80 ms where rows cost a few. ``Prefer: return=minimal`` (RFC 7240) asks for
the case without its timeline and with its open tasks only: what a client driving a case
step by step needs, at a cost that does not grow with the case's history.
"""

from __future__ import annotations

from flask import Response, current_app, request
from sqlalchemy import select
from sqlalchemy.orm import aliased

from casemgr.extensions import db
from casemgr.models import Case, CaseEvent, TaskRecord, User
from casemgr.web.api import json_sql
from casemgr.web.api.serializers import iso, money, username

_Assignee = aliased(User)
_Completer = aliased(User)

_TASK_COLUMNS = (
    TaskRecord.id,
    TaskRecord.case_id,
    TaskRecord.case_type_key,
    TaskRecord.name,
    TaskRecord.title,
    TaskRecord.role,
    _Assignee.username,
    TaskRecord.state,
    TaskRecord.due_at,
    _Completer.username,
    TaskRecord.completed_at,
    TaskRecord.created_at,
    TaskRecord.customer_number,
    TaskRecord.customer_name,
    TaskRecord.amount,
    TaskRecord.form_key,
    TaskRecord.four_eyes,
)


def wants_minimal() -> bool:
    """Whether the request carries ``Prefer: return=minimal``."""
    prefer = request.headers.get("Prefer", "")
    return any(part.strip().lower() == "return=minimal" for part in prefer.split(","))


def case_response(case_id: int, status: int = 200) -> Response:
    """The case document as a response, minimal when the client prefers it.

    Where the database can build JSON (SQLite, PostgreSQL) the tasks and the timeline come
    back from it as one JSON text each and are spliced in unparsed: no row, date or JSON
    detail passes through Python, so a long case's answer costs little more than a new one's.
    """
    minimal = wants_minimal()
    case = db.session.get(Case, case_id)
    arrays = json_sql.case_arrays(db.session, case_id, open_only=minimal, events=not minimal)
    if arrays is None:
        text = current_app.json.dumps(case_document(case, minimal=minimal))
    else:
        text = current_app.json.dumps(case_header(case))
        parts = [f'"{name}":{value}' for name, value in arrays.items()]
        text = text[:-1] + "," + ",".join(parts) + "}"
    response = current_app.response_class(text + "\n", status=status, mimetype="application/json")
    if minimal:
        response.headers["Preference-Applied"] = "return=minimal"
    return response


def case_document(case: Case, minimal: bool = False) -> dict:
    """The case, its human tasks (open and done) and its timeline, oldest first."""
    body = case_header(case)
    body["tasks"] = case_tasks(case.id, open_only=minimal)
    if not minimal:
        body["events"] = case_events(case.id)
    return body


def case_header(case: Case) -> dict:
    """The case's own fields: everything in the document but its tasks and timeline."""
    return {
        "id": case.id,
        "case_type": case.case_type.key,
        "case_type_name": case.case_type.name,
        "version": case.process_version.version,
        "status": case.status,
        "outcome": case.outcome,
        "title": case.title,
        "customer_number": case.customer_number,
        "customer_name": case.customer_name,
        "amount": money(case.amount),
        "started_by": username(case.started_by),
        "created_at": iso(case.created_at),
        "updated_at": iso(case.updated_at),
        "completed_at": iso(case.completed_at),
        "broken": case.broken,
        "data": case.data or {},
    }


def case_tasks(case_id: int, open_only: bool = False) -> list[dict]:
    """Task summaries (serializers.task_summary's shape) of one case, by id."""
    query = (
        select(*_TASK_COLUMNS)
        .outerjoin(_Assignee, _Assignee.id == TaskRecord.assignee_id)
        .outerjoin(_Completer, _Completer.id == TaskRecord.completed_by_id)
        .where(TaskRecord.case_id == case_id)
        .order_by(TaskRecord.id)
    )
    if open_only:
        query = query.where(TaskRecord.state == "open")
    return [
        {
            "id": r[0],
            "case_id": r[1],
            "case_type": r[2],
            "name": r[3],
            "title": r[4],
            "role": r[5],
            "assignee": r[6],
            "state": r[7],
            "due_at": iso(r[8]),
            "completed_by": r[9],
            "completed_at": iso(r[10]),
            "created_at": iso(r[11]),
            "customer_number": r[12],
            "customer_name": r[13],
            "amount": money(r[14]),
            "form_key": r[15],
            "four_eyes": list(r[16] or []),
        }
        for r in db.session.execute(query)
    ]


def case_events(case_id: int) -> list[dict]:
    """The timeline (serializers.event_json's shape), oldest first."""
    query = (
        select(CaseEvent.id, CaseEvent.at, CaseEvent.actor, CaseEvent.kind, CaseEvent.detail)
        .where(CaseEvent.case_id == case_id)
        .order_by(CaseEvent.id)
    )
    return [
        {"id": r[0], "at": iso(r[1]), "actor": r[2], "kind": r[3], "detail": r[4] or {}}
        for r in db.session.execute(query)
    ]
