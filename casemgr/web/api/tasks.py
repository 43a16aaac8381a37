"""Tasks: the inbox, one task with its form, claim, unclaim, assign, complete, bulk-complete.

The views parse and check the request's shape, call the engine and serialize what it returns;
the engine decides who may do what. The inbox reads the task index only (never a workflow).
"""

from __future__ import annotations

from contextlib import suppress

from flask import jsonify, request

from casemgr.engine import cases, clock
from casemgr.engine.errors import Invalid
from casemgr.engine.inbox import InboxQuery, inbox, parse_params
from casemgr.models import ROLES, TaskRecord, User
from casemgr.web.api import bp
from casemgr.web.api.auth import current_api_user, json_body, token_required
from casemgr.web.api.case_document import case_response
from casemgr.web.api.cases import ids_in_range
from casemgr.web.api.errors import ApiError
from casemgr.web.api.openapi import PREFER_MINIMAL, array_of, doc, query, ref
from casemgr.web.api.serializers import task_json, task_summary

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_BULK = 500
SORTS = ("due_at", "-created_at", "-amount")  # the contract's; the engine knows more


# --- the inbox ------------------------------------------------------------------------------
# One query serves the API and the web inbox: casemgr.engine.inbox. This view keeps the
# contract's parameters and answers; GET /work-queue (worklist.py) documents the filters
# added since (amount range, due today, customer, priority, follow-up dates), which this
# endpoint accepts too. Tasks parked until a follow-up date are listed here unless a client
# asks `follow_up=hide`: the contract says "open tasks assigned to the caller".


def parse_inbox_query(follow_up_default: str = "all") -> InboxQuery:
    """The request's inbox parameters; a wrong one is a 422 naming it."""
    params, errors = parse_params(
        request.args,
        default_limit=DEFAULT_LIMIT,
        max_limit=MAX_LIMIT,
        follow_up_default=follow_up_default,
    )
    if errors:
        raise ApiError(422, "invalid query parameters", errors)
    return params


def inbox_page(user: User, params: InboxQuery) -> tuple[list[TaskRecord], int]:
    try:
        return inbox(user, params, clock.now())
    except Invalid as exc:  # an unknown user name in `assignee`
        raise ApiError(422, exc.message, exc.errors) from None


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
    rows, total = inbox_page(current_api_user(), parse_inbox_query())
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
    return jsonify(task_json(cases.read_task(task_id, current_api_user())))


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
    parameters=[PREFER_MINIMAL],
    tag="tasks",
)
@token_required
@ids_in_range
def complete_task(task_id: int):
    """Validate against the task's form and complete it; an unclaimed task is claimed first."""
    user = current_api_user()
    data = _form_data(json_body(required=False), task_id, user)
    case = cases.complete_task(task_id, data, user)
    return case_response(case)


def is_task_id(value: object) -> bool:
    """What a list of task ids may hold; a null or an object is a mistake to name, not a 404."""
    return isinstance(value, int | str) and not isinstance(value, bool)


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
    elif not all(is_task_id(t) for t in task_ids):
        errors["tasks"] = ["each task id must be a number or a string"]
    if data is not None and not isinstance(data, dict):
        errors["data"] = ["must be an object of field names to values"]
    if errors:
        raise ApiError(422, "invalid bulk completion", errors)
    return jsonify({"results": cases.bulk_complete(task_ids, data or {}, current_api_user())})
