"""Work management over the API: the work queue with every filter, follow-up dates,
priority, delegation, reassigning a person's tasks, saved views, and the approval inbox.

Thin views: they check the body's shape and call casemgr.engine.worklist / .inbox. Where a
malformed body and an unknown or forbidden task coincide, the contract's order holds (404 and
403 before 422), as in tasks.py.
"""

from __future__ import annotations

from contextlib import suppress

from flask import jsonify, request

from casemgr.engine import cases, clock, worklist
from casemgr.engine.errors import Conflict, Invalid
from casemgr.engine.inbox import FOLLOW_UP, SORTS, InboxQuery, inbox, parse_params
from casemgr.engine.worklist import MAX_REASON
from casemgr.models import PRIORITIES, ROLES, SavedView, TaskRecord, User
from casemgr.models.task_json import money
from casemgr.web.api import bp
from casemgr.web.api.auth import current_api_user, json_body, token_required
from casemgr.web.api.cases import ids_in_range
from casemgr.web.api.errors import ApiError
from casemgr.web.api.openapi import doc, query, ref
from casemgr.web.api.serializers import iso, task_json, task_summary, username
from casemgr.web.api.tasks import DEFAULT_LIMIT, INBOX_PARAMETERS, MAX_BULK, MAX_LIMIT, is_task_id

_NULLABLE_TEXT = {"type": ["string", "null"]}
WORK_FIELDS = {
    "priority": {"type": "integer", "minimum": 1, "maximum": 4},
    "priority_label": {"enum": list(PRIORITIES.values())},
    "follow_up_at": {"type": ["string", "null"], "format": "date-time"},
    "delegated_from": _NULLABLE_TEXT,
}
WORK_TASK = {
    "allOf": [
        ref("TaskSummary"),
        {"type": "object", "required": list(WORK_FIELDS), "properties": WORK_FIELDS},
    ]
}
WORK_TASK_WITH_FORM = {"allOf": [ref("Task"), WORK_TASK]}
REASON = {"type": "string", "maxLength": MAX_REASON, "description": "kept in the case's timeline"}
TOTAL_HEADER = {
    200: {"X-Total-Count": {"schema": {"type": "integer"}, "description": "matches before paging"}}
}
RESULTS = {
    "type": "object",
    "required": ["results"],
    "properties": {
        "results": {
            "type": "object",
            "description": "by task id",
            "additionalProperties": {
                "type": "object",
                "required": ["status"],
                "properties": {
                    "status": {"type": "integer"},
                    "error": {"type": "string"},
                    "errors": {"type": "object"},
                    "to": _NULLABLE_TEXT,
                    "note": {"type": "string"},
                    "action": {"type": "string"},
                },
            },
        }
    },
}


def work_fields(row: TaskRecord) -> dict:
    return {
        "priority": row.priority,
        "priority_label": PRIORITIES.get(row.priority, str(row.priority)),
        "follow_up_at": iso(row.follow_up_at),
        "delegated_from": username(row.delegated_from),
    }


def work_summary(row: TaskRecord) -> dict:
    """The contract's task summary plus priority, follow-up date and delegation."""
    return task_summary(row) | work_fields(row)


def work_task(row: TaskRecord) -> dict:
    return task_json(row) | work_fields(row)


def _params(**fixed) -> InboxQuery:
    params, errors = parse_params(
        request.args, default_limit=DEFAULT_LIMIT, max_limit=MAX_LIMIT, follow_up_default="hide"
    )
    if errors:
        raise ApiError(422, "invalid query parameters", errors)
    return params.with_(**fixed)


def _page(user: User, params: InboxQuery) -> tuple[list[TaskRecord], int]:
    try:
        return inbox(user, params, clock.now())
    except Invalid as exc:
        raise ApiError(422, exc.message, exc.errors) from None


WORK_QUEUE_PARAMETERS = [p for p in INBOX_PARAMETERS if p["name"] not in ("sort",)] + [
    query("sort", {"enum": list(SORTS), "default": "due_at"}, "due_at: soonest first"),
    query("due", {"enum": ["today", "overdue"]}, "due today (UTC day) or past due"),
    query("customer", {"type": "string"}, "one customer, by number"),
    query("amount_min", {"type": "string"}, "only tasks of at least this amount"),
    query("amount_max", {"type": "string"}, "only tasks of at most this amount"),
    query("priority", {"type": "string"}, "1-4 or low, normal, high, urgent"),
    query(
        "follow_up",
        {"enum": list(FOLLOW_UP), "default": "hide"},
        "hide: leave out tasks parked until a later follow-up date; all; only the parked",
    ),
    query("delegated", {"enum": ["1", "0"]}, "1: the open tasks I delegated to others"),
]


@bp.get("/work-queue")
@doc(
    "The caller's inbox with every filter: the work queue",
    parameters=WORK_QUEUE_PARAMETERS,
    responses={200: ("Open tasks with priority and follow-up", {"type": "array",
                                                                "items": WORK_TASK})},
    errors=(422,),
    headers=TOTAL_HEADER,
    tag="work",
)  # fmt: skip
@token_required
def work_queue():
    """GET /tasks plus amount range, due today, customer, priority and follow-up dates; tasks
    parked until a later follow-up date are left out unless follow_up=all or only."""
    rows, total = _page(current_api_user(), _params())
    response = jsonify([work_summary(row) for row in rows])
    response.headers["X-Total-Count"] = str(total)
    return response


# --- one task -----------------------------------------------------------------------------


def _refuse_as_working_would(task_id: int, user: User) -> None:
    """404, 403 or 409 as working on the task would answer, before a malformed body's 422
    (the contract's order)."""
    cases.check_can_work(cases.get_task(task_id, user), user)


def _refuse_as_delegating_would(task_id: int, user: User) -> None:
    with suppress(Invalid):  # an empty name is refused only after 404, 403 and 409
        worklist.delegate(task_id, "", user)


def _refuse_as_reading_would(task_id: int, user: User) -> None:
    row = cases.get_task(task_id, user)
    if row.state != "open":
        raise Conflict(cases._closed_message(row))


def _text(body: dict, name: str, refuse_first=None) -> str:
    """An optional text field; not text, or a reason longer than the timeline keeps (it was
    cut short without a word), is a 422, after `refuse_first`'s 404/403/409."""
    value = body.get(name)
    if value is None:
        return ""
    problem = None
    if not isinstance(value, str):
        problem = (f"{name} must be text", "must be a string")
    elif name == "reason" and len(value) > MAX_REASON:
        problem = (f"{name} is too long", f"at most {MAX_REASON} characters")
    if problem is not None:
        if refuse_first is not None:
            refuse_first()
        raise ApiError(422, problem[0], {name: [problem[1]]})
    return value


@bp.post("/tasks/<int:task_id>/follow-up")
@doc(
    "Hide a task until a follow-up date",
    json_body={
        "type": "object",
        "required": ["until"],
        "properties": {
            "until": {
                "type": ["string", "null"],
                "description": "YYYY-MM-DD (that day, 00:00 UTC) or an ISO 8601 time; null "
                "clears it",
            },
            "reason": REASON,
        },
    },
    responses={200: ("The task", WORK_TASK_WITH_FORM)},
    errors=(403, 404, 409, 422),
    tag="work",
)
@token_required
@ids_in_range
def follow_up(task_id: int):
    """Park a task until a date ("call back Thursday"); an unclaimed one is claimed first."""
    user = current_api_user()
    body = json_body()
    reason = _text(body, "reason", lambda: _refuse_as_working_would(task_id, user))
    if "until" not in body:
        _refuse_as_working_would(task_id, user)
        raise ApiError(422, "until is required", {"until": ["give a date, or null to clear"]})
    try:
        until = worklist.parse_follow_up(body.get("until"))
    except Invalid:
        _refuse_as_working_would(task_id, user)
        raise
    return jsonify(work_task(worklist.set_follow_up(task_id, until, user, reason)))


@bp.post("/tasks/<int:task_id>/priority")
@doc(
    "Set a task's priority",
    json_body={
        "type": "object",
        "required": ["priority"],
        "properties": {
            "priority": {
                "description": "1-4 or its name",
                "oneOf": [
                    {"type": "integer", "minimum": 1, "maximum": 4},
                    {"enum": list(PRIORITIES.values())},
                ],
            },
            "reason": REASON,
        },
    },
    responses={200: ("The task", WORK_TASK_WITH_FORM)},
    errors=(403, 404, 409, 422),
    tag="work",
)
@token_required
@ids_in_range
def set_priority(task_id: int):
    """The assignee, or a credit manager or admin, ranks a task."""
    user = current_api_user()
    body = json_body()
    reason = _text(body, "reason", lambda: _refuse_as_reading_would(task_id, user))
    priority = body.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int | str):
        priority = "not a priority"
    return jsonify(work_task(worklist.set_priority(task_id, priority, user, reason)))


@bp.post("/tasks/<int:task_id>/delegate")
@doc(
    "Delegate a task; its owner stays informed",
    json_body={
        "type": "object",
        "required": ["user"],
        "properties": {"user": {"type": "string"}, "reason": REASON},
    },
    responses={200: ("The task, now with the delegate", WORK_TASK_WITH_FORM)},
    errors=(403, 404, 409, 422),
    tag="work",
)
@token_required
@ids_in_range
def delegate(task_id: int):
    """The assignee (or a manager) hands the task to someone holding its role; the owner is
    notified of the delegation by another, and of the completion or return."""
    user = current_api_user()
    body = json_body()
    refuse_first = lambda: _refuse_as_delegating_would(task_id, user)  # noqa: E731
    reason = _text(body, "reason", refuse_first)
    name = _text(body, "user", refuse_first).strip()
    if not name:
        refuse_first()
        raise ApiError(422, "user is required", {"user": ["give the user name to delegate to"]})
    return jsonify(work_task(worklist.delegate(task_id, name, user, reason)))


@bp.post("/tasks/<int:task_id>/take-back")
@doc(
    "Take a delegated task back",
    json_body={"type": "object", "properties": {"reason": REASON}},
    body_required=False,
    responses={200: ("The task, back with its owner", WORK_TASK_WITH_FORM)},
    errors=(403, 404, 409, 422),
    tag="work",
)
@token_required
@ids_in_range
def take_back(task_id: int):
    """The owner of a delegated task (or a manager) takes it back from the delegate."""
    user = current_api_user()
    reason = _text(
        json_body(required=False), "reason", lambda: _refuse_as_reading_would(task_id, user)
    )
    return jsonify(work_task(worklist.take_back(task_id, user, reason)))


# --- a person who is out ------------------------------------------------------------------


@bp.post("/users/<name>/reassign-all")
@doc(
    "Reassign every open task of a person",
    json_body={
        "type": "object",
        "properties": {
            "to": {
                "type": ["string", "null"],
                "description": "who takes them; null or absent: back to their queues",
            },
            "reason": REASON,
        },
    },
    body_required=False,
    responses={
        200: (
            "Each task's result: moved, back in its queue (with why), or refused",
            {
                "allOf": [
                    RESULTS,
                    {
                        "type": "object",
                        "properties": {
                            "from": {"type": "string"},
                            "to": _NULLABLE_TEXT,
                            "moved": {"type": "integer"},
                            "queued": {"type": "integer"},
                            "failed": {"type": "integer"},
                        },
                    },
                ]
            },
        )
    },
    errors=(403, 404, 422),
    tag="work",
)
@token_required
def reassign_all(name: str):
    """A credit manager or admin moves everything a person holds to another, in one call; a
    task the other may not take goes back to its queue, and its result says why."""
    user = current_api_user()
    body = json_body(required=False)
    reason = _text(body, "reason")
    to = body.get("to")
    if to is not None and not isinstance(to, str):
        raise ApiError(422, "to must be a user name or null", {"to": ["must be a string"]})
    return jsonify(worklist.reassign_all(name, (to or "").strip() or None, user, reason))


# --- saved views --------------------------------------------------------------------------

VIEW = {
    "type": "object",
    "required": ["id", "name", "params", "shared_with", "owner"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "params": {"type": "object", "additionalProperties": {"type": "string"}},
        "shared_with": {"type": ["string", "null"], "description": "a role key, or null"},
        "owner": _NULLABLE_TEXT,
        "created_by": _NULLABLE_TEXT,
    },
}


def view_json(view: SavedView) -> dict:
    return {
        "id": view.id,
        "name": view.name,
        "params": view.params or {},
        "shared_with": view.role,
        "owner": username(view.owner),
        "created_by": username(view.created_by),
    }


@bp.get("/views")
@doc(
    "My saved inbox views and those shared with my roles",
    responses={200: ("The views", {"type": "array", "items": VIEW})},
    tag="work",
)
@token_required
def list_views():
    """Each view's params are query parameters of GET /work-queue."""
    return jsonify([view_json(v) for v in worklist.views_for(current_api_user())])


@bp.post("/views")
@doc(
    "Save an inbox view (replacing one of the same name)",
    json_body={
        "type": "object",
        "required": ["name", "params"],
        "properties": {
            "name": {"type": "string", "maxLength": 80},
            "params": {"type": "object", "description": "GET /work-queue parameters"},
            "role": {
                "enum": [*ROLES, None],
                "description": "share with everyone of this role (yours, or any for managers)",
            },
        },
    },
    responses={201: ("The view", VIEW)},
    errors=(403, 422),
    tag="work",
)
@token_required
def save_view():
    """A personal view, or one shared with a role."""
    body = json_body()
    role = body.get("role")
    if role is not None and not isinstance(role, str):
        raise ApiError(422, "role must be a role key", {"role": ["must be a string"]})
    view = worklist.save_view(current_api_user(), body.get("name"), body.get("params"), role)
    return jsonify(view_json(view)), 201


@bp.delete("/views/<int:view_id>")
@doc(
    "Delete a saved view",
    responses={204: ("Deleted", None)},
    errors=(403, 404),
    tag="work",
)
@token_required
@ids_in_range
def delete_view(view_id: int):
    """One's own, or a shared one by whoever shared it (or a manager)."""
    worklist.delete_view(view_id, current_api_user())
    return "", 204


# --- the approval inbox -------------------------------------------------------------------

APPROVAL = {
    "allOf": [
        WORK_TASK,
        {
            "type": "object",
            "required": ["approval"],
            "properties": {
                "case_title": {"type": "string"},
                "approval": {
                    "type": "object",
                    "properties": {
                        "recommendation": {
                            "type": ["object", "null"],
                            "properties": {
                                "task": {"type": "string"},
                                "by": _NULLABLE_TEXT,
                                "at": {"type": ["string", "null"], "format": "date-time"},
                                "data": {"type": "object"},
                            },
                        },
                        "credit_limit": _NULLABLE_TEXT,
                        "exposure": _NULLABLE_TEXT,
                        "available_credit": _NULLABLE_TEXT,
                        "past_due": _NULLABLE_TEXT,
                        "oldest_past_due_days": {"type": ["integer", "null"]},
                        "requested": _NULLABLE_TEXT,
                        "reasons": {"type": "array", "items": {"type": "string"}},
                        "authority": {"type": "string"},
                        "blocked": _NULLABLE_TEXT,
                        "actions": {"type": "array", "items": {"enum": list(worklist.ACTIONS)}},
                    },
                },
            },
        },
    ]
}


def approval_json(row: TaskRecord, facts: worklist.ApprovalFacts) -> dict:
    rec = facts.recommendation
    return work_summary(row) | {
        "case_title": row.case.title,
        "approval": {
            "recommendation": None
            if rec is None
            else {"task": rec.task_title, "by": rec.by, "at": iso(rec.at), "data": rec.data},
            "credit_limit": money(facts.credit_limit),
            "exposure": money(facts.exposure),
            "available_credit": money(facts.available),
            "past_due": money(facts.past_due),
            "oldest_past_due_days": facts.oldest_past_due_days,
            "requested": money(facts.requested),
            "reasons": facts.reasons,
            "authority": ROLES.get(row.role, row.role),
            "blocked": facts.blocked,
            "actions": list(facts.actions),
        },
    }


@bp.get("/approvals")
@doc(
    "The approval inbox: waiting approvals with what each decision needs",
    parameters=[*WORK_QUEUE_PARAMETERS, query("scope", {"enum": ["mine", "all"]}, "all: every "
                "waiting approval, also above your authority (readers of every case)")],
    responses={200: ("Approvals, soonest due first", {"type": "array", "items": APPROVAL})},
    errors=(422,),
    headers=TOTAL_HEADER,
    tag="approvals",
)  # fmt: skip
@token_required
def list_approvals():
    """Open tasks under the four-eyes rule in the caller's queues (or all, scope=all), each with
    the recommendation and who made it, limit and exposure, past dues and the authority."""
    user = current_api_user()
    scope = request.args.get("scope") or "mine"
    if scope not in ("mine", "all"):
        raise ApiError(422, "invalid query parameters", {"scope": ["one of mine, all"]})
    rows, total = _page(user, _params(approvals=True, everyone=scope == "all"))
    facts = worklist.approval_facts(rows, user)
    response = jsonify([approval_json(row, facts[row.id]) for row in rows])
    response.headers["X-Total-Count"] = str(total)
    return response


@bp.post("/approvals/decide")
@doc(
    "Approve, reject or send back many approvals at once, each as if alone",
    json_body={
        "type": "object",
        "required": ["tasks", "action"],
        "properties": {
            "tasks": {"type": "array", "items": {"type": ["integer", "string"]}, "maxItems": 500},
            "action": {"enum": list(worklist.ACTIONS)},
            "comment": {"type": ["string", "null"], "description": "the comment for every task"},
            "comments": {
                "type": ["object", "null"],
                "additionalProperties": {"type": "string"},
                "description": "a comment per task id, instead of `comment`",
            },
        },
    },
    responses={200: ("Each task's own status and error", RESULTS)},
    errors=(413, 422),
    tag="approvals",
)
@token_required
def decide():
    """Each task's form maps the action to its own decision choice; a task outside the
    caller's authority, refused by the four-eyes rule or without that choice fails alone."""
    body = json_body()
    tasks, action = body.get("tasks"), body.get("action")
    comment, comments = body.get("comment"), body.get("comments")
    errors: dict[str, list[str]] = {}
    if not isinstance(tasks, list):
        errors["tasks"] = ["must be a list of task ids"]
    elif len(tasks) > MAX_BULK:
        errors["tasks"] = [f"at most {MAX_BULK} tasks at once"]
    elif not all(is_task_id(t) for t in tasks):
        errors["tasks"] = ["each task id must be a number or a string"]
    if action not in worklist.ACTIONS:
        errors["action"] = [f"one of {', '.join(worklist.ACTIONS)}"]
    if comment is not None and not isinstance(comment, str):
        errors["comment"] = ["must be a string"]
    if comments is not None and not isinstance(comments, dict):
        errors["comments"] = ["must be an object of task id to comment"]
    elif comments and not all(isinstance(text, str) for text in comments.values()):
        # Not dropped silently in favour of `comment`: the caller meant that task's own words.
        errors["comments"] = ["each comment must be a string"]
    if errors:
        raise ApiError(422, "invalid decision", errors)
    results = worklist.decide(tasks, action, current_api_user(), comment or "", comments)
    return jsonify({"results": results})
