"""Tasks: the inbox, one task with its form, claim, unclaim, assign, complete, bulk-complete.

The views parse and check the request's shape, call the engine and serialize what it returns;
the engine decides who may do what. The inbox reads the task index only (never a workflow).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from flask import jsonify, request
from sqlalchemy import or_
from sqlalchemy.orm import selectinload

from casemgr.engine import access, cases, clock
from casemgr.engine.errors import Invalid
from casemgr.extensions import db
from casemgr.models import ROLES, Case, CaseType, TaskRecord, User
from casemgr.web.api import bp
from casemgr.web.api.auth import current_api_user, json_body, token_required
from casemgr.web.api.cases import MAX_ID, ids_in_range, load_case
from casemgr.web.api.errors import ApiError
from casemgr.web.api.openapi import array_of, doc, query, ref
from casemgr.web.api.serializers import case_json, task_json, task_summary

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_BULK = 500
SORTS = ("due_at", "-created_at", "-amount")


# --- the inbox ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxQuery:
    """The inbox's query parameters, checked: a wrong one is a 422 naming it."""

    case_type: str | None = None
    role: str | None = None
    assignee: str | None = None
    overdue: bool = False
    q: str | None = None
    sort: str = "due_at"
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def _count_param(name: str, default: int, errors: dict[str, list[str]]) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        errors[name] = ["must be a whole number, 0 or more"]
        return default
    return int(raw)


def parse_inbox_query() -> InboxQuery:
    args = request.args
    errors: dict[str, list[str]] = {}
    case_type = args.get("case_type") or None
    if (
        case_type is not None
        and not db.session.execute(db.select(CaseType.id).filter_by(key=case_type)).first()
    ):
        errors["case_type"] = [f"unknown case type {case_type!r}"]
    role = args.get("role") or None
    if role is not None and role not in ROLES:
        errors["role"] = [f"unknown role {role!r}; one of {', '.join(ROLES)}"]
    overdue_raw = args.get("overdue", "").lower()
    if overdue_raw not in ("", "0", "1", "true", "false"):
        errors["overdue"] = ["use overdue=1"]
    sort = args.get("sort") or "due_at"
    if sort not in SORTS:
        errors["sort"] = [f"one of {', '.join(SORTS)}"]
    limit = _count_param("limit", DEFAULT_LIMIT, errors)
    offset = _count_param("offset", 0, errors)
    if errors:
        raise ApiError(422, "invalid query parameters", errors)
    return InboxQuery(
        case_type=case_type,
        role=role,
        assignee=args.get("assignee") or None,
        overdue=overdue_raw in ("1", "true"),
        q=(args.get("q") or "").strip() or None,
        sort=sort,
        limit=min(limit, MAX_LIMIT),
        offset=min(offset, MAX_ID),
    )


def _assignee_branches(user: User, who: str | None) -> list:
    """Whose tasks, as disjoint conditions: the caller's own, their roles' unclaimed queue, or
    (for a manager or admin) another user's. Disjoint, so their counts add up, and each one
    matches an index of the task table, which a single OR would not use as well."""
    mine = TaskRecord.assignee_id == user.id
    queue = TaskRecord.assignee_id.is_(None) & TaskRecord.role.in_(sorted(user.role_keys))
    if who is None:
        return [mine, queue]
    if who in ("me", user.username):
        return [mine]
    if who == "none":
        return [queue]
    other = db.session.execute(db.select(User).filter_by(username=who)).scalar_one_or_none()
    if other is None:
        raise ApiError(422, "invalid query parameters", {"assignee": [f"unknown user {who!r}"]})
    if access.can_manage_tasks(user):
        return [TaskRecord.assignee_id == other.id]
    return []  # anyone else sees only their own inbox, which holds none of another's tasks


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _text_condition(q: str):
    """Customer number or name, case title, or a case id ("42" or "#42")."""
    pattern = _like(q)
    title_match = db.select(Case.id).where(Case.title.ilike(pattern, escape="\\"))
    conditions = [
        TaskRecord.customer_number.ilike(pattern, escape="\\"),
        TaskRecord.customer_name.ilike(pattern, escape="\\"),
        TaskRecord.case_id.in_(title_match),
    ]
    digits = q.removeprefix("#")
    if digits.isascii() and digits.isdigit() and int(digits) <= MAX_ID:
        conditions.append(TaskRecord.case_id == int(digits))
    return or_(*conditions)


def _order(sort: str) -> list:
    if sort == "-created_at":
        return [TaskRecord.created_at.desc(), TaskRecord.id.desc()]
    if sort == "-amount":
        return [TaskRecord.amount.is_(None), TaskRecord.amount.desc(), TaskRecord.id]
    return [TaskRecord.due_at.is_(None), TaskRecord.due_at, TaskRecord.id]


def inbox(user: User, params: InboxQuery, now: datetime) -> tuple[list[TaskRecord], int]:
    """The page of open tasks the parameters select, and how many match before paging.

    The page is found on ids first (the sort then runs on the index, not on whole rows) and
    only its rows are loaded: with 10,000 open tasks that is several times faster.
    """
    branches = _assignee_branches(user, params.assignee)
    if not branches:
        return [], 0
    filters = [TaskRecord.state == "open"]
    if params.case_type:
        filters.append(TaskRecord.case_type_key == params.case_type)
    if params.role:
        filters.append(TaskRecord.role == params.role)
    if params.overdue:
        filters.append(TaskRecord.due_at < now)
    if params.q:
        filters.append(_text_condition(params.q))
    total = sum(
        db.session.execute(
            db.select(db.func.count(TaskRecord.id)).where(*filters, branch)
        ).scalar_one()
        for branch in branches
    )
    page = list(
        db.session.execute(
            db.select(TaskRecord.id)
            .where(*filters, or_(*branches))
            .order_by(*_order(params.sort))
            .limit(params.limit)
            .offset(params.offset)
        ).scalars()
    )
    rows = db.session.execute(
        db.select(TaskRecord)
        .where(TaskRecord.id.in_(page))
        .options(selectinload(TaskRecord.assignee))
    ).scalars()
    by_id = {row.id: row for row in rows}
    return [by_id[task_id] for task_id in page], total


INBOX_PARAMETERS = [
    query("case_type", {"type": "string"}, "only tasks of this case type"),
    query("role", {"enum": list(ROLES)}, "only tasks of this role"),
    query(
        "assignee",
        {"type": "string"},
        "`me`, `none` (unclaimed, of your roles) or a user name (managers and admins)",
    ),
    query("overdue", {"enum": ["1", "0"]}, "1: only tasks past their due date"),
    query("q", {"type": "string"}, "customer number or name, case title, or case id"),
    query(
        "sort", {"enum": list(SORTS), "default": "due_at"}, "due_at: soonest first, undated last"
    ),
    query(
        "limit",
        {"type": "integer", "minimum": 0, "default": DEFAULT_LIMIT},
        f"page size; above {MAX_LIMIT} counts as {MAX_LIMIT}",
    ),
    query("offset", {"type": "integer", "minimum": 0, "default": 0}, "tasks to skip"),
]


@bp.get("/tasks")
@doc(
    "The caller's inbox",
    parameters=INBOX_PARAMETERS,
    responses={200: ("Open tasks, soonest due first", array_of("TaskSummary"))},
    errors=(422,),
    headers={
        200: {
            "X-Total-Count": {
                "schema": {"type": "integer"},
                "description": "matching tasks before paging",
            }
        }
    },
    tag="tasks",
)
@token_required
def list_tasks():
    """Open tasks assigned to the caller and unclaimed ones of the caller's roles."""
    rows, total = inbox(current_api_user(), parse_inbox_query(), clock.now())
    response = jsonify([task_summary(row) for row in rows])
    response.headers["X-Total-Count"] = str(total)
    return response


# --- one task -------------------------------------------------------------------------------


@bp.get("/tasks/<int:task_id>")
@doc(
    "A task with its form",
    responses={200: ("The task", ref("Task"))},
    errors=(403, 404),
    tag="tasks",
)
@token_required
@ids_in_range
def get_task(task_id: int):
    """One task, with the description of the form that completes it."""
    return jsonify(task_json(cases.get_task(task_id, current_api_user())))


def _reason(body: dict, task_id: int, user: User) -> str:
    """The optional free-text reason of an unclaim or assignment (kept in the timeline)."""
    reason = body.get("reason")
    if reason is None:
        return ""
    if not isinstance(reason, str):
        cases.get_task(task_id, user)  # an unknown or unseen task answers 404/403 first
        raise ApiError(422, "reason must be text", {"reason": ["must be a string"]})
    return reason.strip()[:500]


@bp.post("/tasks/<int:task_id>/claim")
@doc(
    "Claim a task",
    responses={200: ("The task, now assigned to the caller", ref("Task"))},
    errors=(403, 404, 409),
    tag="tasks",
)
@token_required
@ids_in_range
def claim_task(task_id: int):
    """Take a task from its role's queue; another user's claim is a 409."""
    return jsonify(task_json(cases.claim_task(task_id, current_api_user())))


@bp.post("/tasks/<int:task_id>/unclaim")
@doc(
    "Give a task back to its role's queue",
    json_body=ref("Unclaim"),
    body_required=False,
    responses={200: ("The task, unassigned", ref("Task"))},
    errors=(403, 404, 409, 422),
    tag="tasks",
)
@token_required
@ids_in_range
def unclaim_task(task_id: int):
    """Only the assignee, a credit manager or an admin may put a task back in the queue."""
    user = current_api_user()
    reason = _reason(json_body(required=False), task_id, user)
    return jsonify(task_json(cases.unclaim_task(task_id, user, reason)))


@bp.post("/tasks/<int:task_id>/assign")
@doc(
    "Assign a task to a user who holds its role",
    json_body=ref("Assign"),
    responses={200: ("The task, assigned", ref("Task"))},
    errors=(403, 404, 409, 422),
    tag="tasks",
)
@token_required
@ids_in_range
def assign_task(task_id: int):
    """A credit manager or admin hands a task to someone holding its role."""
    user = current_api_user()
    body = json_body()
    name = body.get("user")
    reason = _reason(body, task_id, user)
    if not isinstance(name, str) or not name.strip():
        # The engine answers 404, 403 and 409 before it looks the user up, where an empty
        # name is refused; that refusal is reported as the missing field it is.
        with suppress(Invalid):
            cases.assign_task(task_id, "", user, reason)
        raise ApiError(422, "user is required", {"user": ["give the user name to assign to"]})
    return jsonify(task_json(cases.assign_task(task_id, name.strip(), user, reason)))


def _refuse_as_completion_would(task_id: int, user: User) -> None:
    """Raise the 404, 403 or 409 that completing this task would answer, changing nothing."""
    row = cases.get_task(task_id, user)
    cases.check_can_work(row, user)


def _form_data(body: dict, task_id: int, user: User) -> dict:
    """The "data" object of a completion; a malformed one is 422 only once 404/403/409 pass."""
    data = body.get("data")
    if data is None:
        return {}
    if not isinstance(data, dict):
        _refuse_as_completion_would(task_id, user)
        raise ApiError(
            422,
            "data must be a JSON object",
            {"data": ["must be an object of field names to values"]},
        )
    return data


@bp.post("/tasks/<int:task_id>/complete")
@doc(
    "Complete a task with its form's data",
    json_body=ref("Complete"),
    body_required=False,
    responses={200: ("The case, run to its next wait state", ref("Case"))},
    errors=(403, 404, 409, 413, 422),
    tag="tasks",
)
@token_required
@ids_in_range
def complete_task(task_id: int):
    """Validate against the task's form and complete it; an unclaimed task is claimed first."""
    user = current_api_user()
    data = _form_data(json_body(required=False), task_id, user)
    case = cases.complete_task(task_id, data, user)
    return jsonify(case_json(load_case(case.id)))


@bp.post("/tasks/bulk-complete")
@doc(
    "Complete several tasks with the same data, each as if alone",
    json_body=ref("BulkComplete"),
    responses={200: ("Each task's own status and error", ref("BulkResults"))},
    errors=(413, 422),
    tag="tasks",
)
@token_required
def bulk_complete():
    """A manager approving a batch: one task's failure stops no other."""
    body = json_body()
    task_ids = body.get("tasks")
    data = body.get("data")
    errors: dict[str, list[str]] = {}
    if not isinstance(task_ids, list):
        errors["tasks"] = ["must be a list of task ids"]
    elif len(task_ids) > MAX_BULK:
        errors["tasks"] = [f"at most {MAX_BULK} tasks at once"]
    if data is not None and not isinstance(data, dict):
        errors["data"] = ["must be an object of field names to values"]
    if errors:
        raise ApiError(422, "invalid bulk completion", errors)
    return jsonify({"results": cases.bulk_complete(task_ids, data or {}, current_api_user())})
