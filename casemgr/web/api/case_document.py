"""The case document of API.md: the answer to GET /cases/{id}, to a start and to a completion.

The tasks and the timeline are built as JSON by the database (casemgr.web.api.json_sql),
not from ORM objects: a case at its 500th loop has ~1,500 events and 500 tasks, and an
object for each made the answer cost ~80 ms. ``Prefer: return=minimal`` (RFC 7240) asks for
the case without its timeline and with its open tasks only: what a client driving a case
step by step needs, at a cost that does not grow with the case's history.
"""

from __future__ import annotations

from functools import cache

from flask import Response, current_app, request
from sqlalchemy import Select, bindparam, inspect, select

from casemgr.extensions import db
from casemgr.models import Case, CaseType, ProcessVersion, User
from casemgr.models.task_json import money
from casemgr.web.api import json_sql
from casemgr.web.api.serializers import iso


def wants_minimal() -> bool:
    """Whether the request carries ``Prefer: return=minimal``."""
    prefer = request.headers.get("Prefer", "")
    return any(part.strip().lower() == "return=minimal" for part in prefer.split(","))


def case_response(case: Case | int, status: int = 200) -> Response:
    """The case document as a response, minimal when the client prefers it.

    The database reads the case's fields and builds the tasks and the timeline as one JSON
    text each (two statements), spliced in unparsed: no row, date or JSON detail passes
    through Python, so a long case's answer costs little more than a new one's.
    """
    case_id = case if isinstance(case, int) else case_id_of(case)
    minimal = wants_minimal()
    dialect = db.session.get_bind().dialect.name
    params = {"case_id": case_id}
    row = db.session.execute(_document(dialect, minimal), params).one()
    arrays = [f'"tasks":{row.tasks}']
    if not minimal:
        events = db.session.execute(json_sql.events_statement(dialect), params).scalar_one()
        arrays.append(f'"events":{events}')
    text = current_app.json.dumps(_header(row))
    text = text[:-1] + "," + ",".join(arrays) + "}"
    response = current_app.response_class(text + "\n", status=status, mimetype="application/json")
    if minimal:
        response.headers["Preference-Applied"] = "return=minimal"
    return response


def case_id_of(case: Case) -> int:
    """The id without touching the object: after the step's commit it is expired, and
    reading ``case.id`` would reload the whole row (its workflow state included)."""
    return inspect(case).identity[0]


# The names the document shows, read with the case: four ORM loads (case, type, version,
# starter) after the step's commit cost more than the step's own queries.
_HEADER_COLUMNS = (
    Case.id,
    CaseType.key,
    CaseType.name,
    ProcessVersion.version,
    Case.status,
    Case.outcome,
    Case.title,
    Case.customer_number,
    Case.customer_name,
    Case.amount,
    User.username,
    Case.created_at,
    Case.updated_at,
    Case.completed_at,
    Case.broken,
    Case.data,
)


def _of_the_case(query: Select) -> Select:
    return (
        query.join(CaseType, CaseType.id == Case.case_type_id)
        .join(ProcessVersion, ProcessVersion.id == Case.process_version_id)
        .outerjoin(User, User.id == Case.started_by_id)
        .where(Case.id == bindparam("case_id"))
    )


@cache
def _document(dialect: str, minimal: bool) -> Select:
    """The case's fields and its tasks in one round trip (the timeline is a second); built
    once per shape (building it costs more than running it)."""
    tasks = json_sql.tasks_column(dialect, open_only=minimal)
    return _of_the_case(select(*_HEADER_COLUMNS, tasks))


def _header(r) -> dict:
    """The case's own fields: everything in the document but its tasks and timeline."""
    return {
        "id": r[0],
        "case_type": r[1],
        "case_type_name": r[2],
        "version": r[3],
        "status": r[4],
        "outcome": r[5],
        "title": r[6],
        "customer_number": r[7],
        "customer_name": r[8],
        "amount": money(r[9]),
        "started_by": r[10],
        "created_at": iso(r[11]),
        "updated_at": iso(r[12]),
        "completed_at": iso(r[13]),
        "broken": r[14],
        "data": r[15] or {},
    }
