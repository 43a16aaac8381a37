"""The inbox (my tasks and my roles' queues), the task page and the actions on a task:
claim, unclaim, assign, delegate, follow-up date, priority; saved views; the team page where
a manager reassigns everything of a person who is out.

Thin views: the inbox is casemgr.engine.inbox's query (the same one the API answers from),
and every action is one call to casemgr.engine.cases or casemgr.engine.worklist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import Blueprint, flash, redirect, render_template, request, url_for
from wtforms import Form

from casemgr import forms
from casemgr.engine import worklist
from casemgr.engine.access import can_manage_tasks, can_read_task
from casemgr.engine.cases import (
    assign_task,
    claim_task,
    complete_task,
    four_eyes_violation,
    get_task,
    read_task,
    unclaim_task,
)
from casemgr.engine.errors import EngineError, Invalid
from casemgr.engine.inbox import VIEW_PARAMS, inbox, parked_count, parse_params, view_params
from casemgr.extensions import db
from casemgr.models import PRIORITIES, ROLES, CaseEvent, Role, TaskRecord, User
from casemgr.web import approvals
from casemgr.web.helpers import (
    KEY_FIGURES,
    case_type_names,
    data_items,
    form_values,
    form_with_errors,
    prefilled_form,
    require_login,
    safe_next,
    sentence,
    user,
)

bp = Blueprint("inbox", __name__)
require_login(bp)
# The approval inbox is its own blueprint; it comes with this one, so registering the inbox
# (casemgr.web.register_web) registers both.
bp.record_once(lambda state: state.app.register_blueprint(approvals.bp))

PER_PAGE = 50
MAX_BULK = 200
# A saved view's names less "overdue" (shown as due=overdue) and "sort" (its own control).
FILTER_NAMES = tuple(name for name in VIEW_PARAMS if name not in ("overdue", "sort"))
SORT_LABELS = {
    "due_at": "due soonest",
    "-due_at": "due latest",
    "-created_at": "newest",
    "created_at": "oldest",
    "-amount": "largest amount",
    "-priority": "priority",
    "customer": "customer",
}


@dataclass(frozen=True)
class Paging:
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 100_000 else 1


def _query_string(**changes) -> str:
    """The current inbox address with some parameters changed (None removes one)."""
    args = {k: v for k, v in request.args.items() if v != ""}
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    return "?" + urlencode(args) if args else ""


@bp.get("/")
def index():
    me = user()
    now = datetime.now(UTC)
    args = request.args.to_dict()
    if "overdue" in args and not args.get("due"):  # the API's overdue=1 reads as due=overdue
        args["due"] = "overdue" if args.pop("overdue") in ("1", "true") else ""
    params, errors = parse_params(args, default_limit=PER_PAGE, max_limit=PER_PAGE)
    number = _page_number()
    params = params.with_(limit=PER_PAGE, offset=(number - 1) * PER_PAGE)
    try:
        rows, total = inbox(me, params, now)
    except Invalid as exc:
        errors.update(exc.errors or {})
        params = params.with_(assignee=None)
        rows, total = inbox(me, params, now)
    selected = {name: request.args.get(name, "") for name in FILTER_NAMES}
    selected["sort"] = params.sort
    if not selected["due"] and request.args.get("overdue") in ("1", "true"):
        selected["due"] = "overdue"
    filtered = any(selected[name] for name in FILTER_NAMES if name != "follow_up")
    return render_template(
        "inbox/index.html",
        rows=rows,
        paging=Paging(number, PER_PAGE, total),
        params=params,
        errors=errors,
        selected=selected,
        filtered=filtered,
        case_types=case_type_names(),
        roles=[r for r in ROLES if r in me.role_keys],
        priorities=PRIORITIES,
        sorts=SORT_LABELS,
        views=worklist.views_for(me),
        current_view=view_params(request.args),
        parked=parked_count(me, now),
        manager=can_manage_tasks(me),
        people=_people() if can_manage_tasks(me) else [],
        query_string=_query_string,
        now=now,
    )


def _people() -> list[User]:
    """Who can be given work: active users with a role that works tasks."""
    working = ("ar_specialist", "credit_manager", "controller", "sales_rep")
    return list(
        db.session.execute(
            db.select(User)
            .where(User.active.is_(True), User.roles.any(Role.key.in_(working)))
            .order_by(User.username)
        ).scalars()
    )


def _holders(role: str, exclude: set[int] = frozenset()) -> list[User]:
    return [p for p in _people() if role in p.role_keys and p.id not in exclude]


def _back(default: str) -> str:
    return safe_next(request.form.get("next"), default)


def _reason() -> str:
    return request.form.get("reason", "").strip()[:500]


# --- many tasks at once -------------------------------------------------------------------


@bp.post("/inbox/bulk")
def bulk():
    """Claim, or (managers) assign, the selected tasks: each one on its own, results summed."""
    me = user()
    back = _back(url_for(".index"))
    ids = [t for t in request.form.getlist("task") if t.isascii() and t.isdigit()][:MAX_BULK]
    action = request.form.get("action", "")
    if not ids:
        flash("Select at least one task first (x on a row, or the box in the header).", "error")
        return redirect(back)
    done, refused = 0, []
    target = request.form.get("user", "").strip()
    for raw in ids:
        try:
            if action == "claim":
                claim_task(int(raw), me)
            elif action == "assign" and target:
                assign_task(int(raw), target, me, _reason())
            elif action == "unclaim":
                unclaim_task(int(raw), me, _reason())
            else:
                flash("Choose what to do with the selected tasks.", "error")
                return redirect(back)
            done += 1
        except EngineError as exc:
            db.session.rollback()
            refused.append(f"task {raw}: {exc.message}")
    verb = {"claim": "Claimed", "assign": f"Assigned to {target}", "unclaim": "Unclaimed"}
    if done:
        flash(f"{verb[action]}: {done} task{'s' if done != 1 else ''}.", "success")
    for message in refused[:10]:
        flash(sentence(message), "error")
    return redirect(back)


# --- saved views --------------------------------------------------------------------------


@bp.post("/views")
def save_view():
    me = user()
    params = view_params(request.form)
    role = request.form.get("share_with") or None
    try:
        view = worklist.save_view(me, request.form.get("name", ""), params, role)
    except EngineError as exc:
        db.session.rollback()
        details = "; ".join(m for msgs in (exc.errors or {}).values() for m in msgs)
        flash(sentence(f"{exc.message}{': ' + details if details else ''}"), "error")
        return redirect(url_for(".index") + _query_from(params))
    shared = f", shared with {ROLES[view.role]}" if view.role else ""
    flash(f"Saved the view “{view.name}”{shared}.", "success")
    return redirect(url_for(".index") + _query_from(view.params or {}))


def _query_from(params: dict) -> str:
    return "?" + urlencode(params) if params else ""


@bp.post("/views/<int:view_id>/delete")
def delete_view(view_id: int):
    try:
        worklist.delete_view(view_id, user())
    except EngineError as exc:
        flash(sentence(exc.message), "error")
        return redirect(url_for(".index"))
    flash("The view is deleted.", "success")
    return redirect(url_for(".index"))


# --- the team: reassigning everything of a person who is out -------------------------------


@bp.get("/team")
def team():
    me = user()
    rows = worklist.workload(me)  # Forbidden (403 page) unless a manager or admin
    return render_template(
        "inbox/team.html", rows=rows, people=[p for p, _, _ in rows], now=datetime.now(UTC)
    )


@bp.post("/team/<name>/reassign-all")
def reassign_all(name: str):
    me = user()
    to = request.form.get("to", "").strip() or None
    try:
        result = worklist.reassign_all(name, to, me, _reason())
    except EngineError as exc:
        db.session.rollback()
        flash(sentence(exc.message), "error")
        return redirect(url_for(".team"))
    moved, queued, failed = result["moved"], result["queued"], result["failed"]
    if not result["results"]:
        flash(f"{name} holds no open tasks.", "info")
    else:
        where = f"to {to}" if to else "back to their queues"
        parts = [f"{moved} moved {where}"] if to else [f"{queued} back in their queues"]
        if to and queued:
            parts.append(f"{queued} back in their queues (not allowed for {to})")
        if failed:
            parts.append(f"{failed} refused")
        flash(f"{name}'s tasks: {', '.join(parts)}.", "success" if not failed else "error")
        for task_id, r in result["results"].items():
            if r.get("note") or r.get("error"):
                flash(f"Task {task_id}: {sentence(r.get('note') or r.get('error'))}", "info")
    return redirect(url_for(".team"))


# --- the task page ------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskActions:
    """What this user may do with this task now, and if nothing, why (shown on the page)."""

    blocked: str | None
    blocked_kind: str | None
    can_claim: bool
    can_unclaim: bool
    can_complete: bool
    can_follow_up: bool = False
    can_delegate: bool = False
    can_take_back: bool = False
    can_assign: bool = False
    can_prioritise: bool = False


def task_actions(row: TaskRecord, me: User) -> TaskActions:
    blocked, kind = None, None
    if row.state != "open":
        blocked, kind = "This task is closed.", "closed"
    elif row.role not in me.role_keys:
        role = ROLES.get(row.role, row.role)
        blocked = f"This task is for the {role} role: you can read it, not work on it."
        kind = "role"
    elif problem := four_eyes_violation(row, me):
        blocked, kind = sentence(problem), "four_eyes"
    elif row.assignee_id not in (None, me.id):
        blocked, kind = f"{row.assignee.label} has claimed this task.", "claimed"
    is_open = row.state == "open"
    manager = can_manage_tasks(me)
    mine = is_open and row.assignee_id == me.id
    return TaskActions(
        blocked=blocked,
        blocked_kind=kind,
        can_claim=blocked is None and row.assignee_id is None,
        can_unclaim=is_open
        and row.assignee_id is not None
        and (row.assignee_id == me.id or manager),
        can_complete=blocked is None,
        can_follow_up=blocked is None,
        can_delegate=is_open and (blocked is None or (manager and row.assignee_id is not None)),
        can_take_back=is_open
        and row.delegated_from_id is not None
        and (row.delegated_from_id == me.id or manager),
        can_assign=is_open and manager,
        can_prioritise=mine or (is_open and manager),
    )


def completion_event(row: TaskRecord) -> CaseEvent | None:
    """The timeline event of this task's completion (for who and when on a closed task)."""
    for event in reversed(row.case.events):
        if event.kind == "task_completed" and (event.detail or {}).get("task_id") == row.id:
            return event
    return None


def _submitted_data(row: TaskRecord) -> list[tuple[str, str]]:
    """What was entered when this task was completed (from the append-only timeline)."""
    event = completion_event(row)
    return data_items(event.detail.get("data") or {}) if event else []


def _recommenders(row: TaskRecord) -> list[TaskRecord]:
    """The completed tasks the four-eyes rule points at: who recommended what is approved."""
    return [t for t in row.case.tasks if t.name in (row.four_eyes or []) and t.state == "completed"]


def _render_task(
    row: TaskRecord,
    me: User,
    form: Form | None,
    problem: str | None = None,
    general: list[str] | None = None,
    status: int = 200,
):
    case = row.case
    actions = task_actions(row, me)
    holders = []
    if actions.can_delegate or actions.can_assign:
        holders = _holders(row.role, exclude={row.assignee_id or 0})
    return render_template(
        "inbox/task.html",
        task=row,
        case=case,
        form=form,
        problem=problem,
        general=general or [],
        actions=actions,
        holders=holders,
        priorities=PRIORITIES,
        key_figures=data_items(case.data, KEY_FIGURES),
        recommenders=_recommenders(row),
        submitted=_submitted_data(row) if row.state == "completed" else [],
        now=datetime.now(UTC),
    ), status


@bp.route("/tasks/<int:task_id>", methods=["GET", "POST"])
def task(task_id: int):
    me = user()
    if request.method == "POST":
        row = get_task(task_id, me)  # a stale page still gets its 409, see _complete
        return _complete(row, forms.get_form_class(row.form_key), me)
    row = read_task(task_id, me)
    form_cls = forms.get_form_class(row.form_key)
    form = prefilled_form(form_cls, row.case.data) if form_cls and row.state == "open" else None
    return _render_task(row, me, form)


def _complete(row: TaskRecord, form_cls: type[Form] | None, me: User):
    """Complete, or show the page again with what was typed and why it did not go through."""
    data = form_values(form_cls, request.form) if form_cls else {}
    try:
        case = complete_task(row.id, data, me)
    except Invalid as exc:
        form, general = None, []
        if form_cls:
            form, general = form_with_errors(form_cls, request.form, exc.errors)
        problem = None if exc.errors else sentence(exc.message)
        return _render_task(row, me, form, problem, general, status=422)
    except EngineError as exc:
        # A stale page (completed meanwhile), four-eyes, a lost role, a broken diagram:
        # keep what they typed so nothing is lost, and say plainly what happened.
        db.session.rollback()
        form = form_with_errors(form_cls, request.form, None)[0] if form_cls else None
        if not can_read_task(me, row):
            # Closed meanwhile, and no longer theirs to read: what they typed, not the case.
            return render_template(
                "inbox/task_closed.html", task=row, form=form, problem=sentence(exc.message)
            ), exc.status
        return _render_task(row, me, form, sentence(exc.message), status=exc.status)
    flash(f"Completed “{row.title}”.", "success")
    if request.form.get("then") == "next":
        return redirect(url_for(".index"))
    return redirect(url_for("cases.detail", case_id=case.id))


def _act(task_id: int, action, success: str, default: str | None = None):
    """Run one action on a task; flash its result and go back where the user came from."""
    back = _back(default or url_for(".task", task_id=task_id))
    try:
        row = action()
    except EngineError as exc:
        db.session.rollback()
        details = "; ".join(m for msgs in (exc.errors or {}).values() for m in msgs)
        text = f"{exc.message} ({details})" if details and details != exc.message else exc.message
        flash(sentence(text), "error")
        return redirect(back)
    flash(success.format(title=row.title, role=ROLES.get(row.role, row.role)), "success")
    return redirect(back)


@bp.post("/tasks/<int:task_id>/claim")
def claim(task_id: int):
    try:
        row = claim_task(task_id, user())
    except EngineError as exc:
        flash(sentence(exc.message), "error")
        return redirect(safe_next(request.form.get("next"), url_for(".index")))
    flash(f"You have claimed “{row.title}”.", "success")
    return redirect(url_for(".task", task_id=task_id))


@bp.post("/tasks/<int:task_id>/unclaim")
def unclaim(task_id: int):
    return _act(
        task_id,
        lambda: unclaim_task(task_id, user(), reason=_reason()),
        "“{title}” is back in the {role} queue.",
    )


@bp.post("/tasks/<int:task_id>/assign")
def assign(task_id: int):
    name = request.form.get("user", "").strip()
    return _act(
        task_id,
        lambda: assign_task(task_id, name, user(), _reason()),
        f"“{{title}}” is assigned to {name}.",
    )


@bp.post("/tasks/<int:task_id>/delegate")
def delegate(task_id: int):
    name = request.form.get("user", "").strip()
    return _act(
        task_id,
        lambda: worklist.delegate(task_id, name, user(), _reason()),
        f"“{{title}}” is delegated to {name}; you will hear what becomes of it.",
    )


@bp.post("/tasks/<int:task_id>/take-back")
def take_back(task_id: int):
    return _act(
        task_id, lambda: worklist.take_back(task_id, user(), _reason()), "“{title}” is yours again."
    )


@bp.post("/tasks/<int:task_id>/follow-up")
def follow_up(task_id: int):
    me = user()
    raw = "" if request.form.get("clear") else request.form.get("until", "").strip()

    def act():
        until = worklist.parse_follow_up(raw or None)
        return worklist.set_follow_up(task_id, until, me, _reason())

    success = (
        f"“{{title}}” is hidden from your inbox until {raw}."
        if raw
        else "“{title}” shows in your inbox again."
    )
    return _act(task_id, act, success, default=url_for(".index"))


@bp.post("/tasks/<int:task_id>/priority")
def priority(task_id: int):
    level = request.form.get("priority", "")
    return _act(
        task_id,
        lambda: worklist.set_priority(task_id, level, user(), _reason()),
        "“{title}” priority set.",
    )
