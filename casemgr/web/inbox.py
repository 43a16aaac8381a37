"""The inbox (my tasks and my roles' queues), the task page, claim and unclaim."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import or_
from sqlalchemy.orm import selectinload
from wtforms import Form

from casemgr import forms
from casemgr.engine.access import can_manage_tasks
from casemgr.engine.cases import (
    claim_task,
    complete_task,
    four_eyes_violation,
    get_task,
    unclaim_task,
)
from casemgr.engine.errors import EngineError, Invalid
from casemgr.extensions import db
from casemgr.models import ROLES, CaseEvent, TaskRecord, User
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

PER_PAGE = 50


def inbox_query(me: User, case_type: str | None = None, role: str | None = None):
    """Open tasks assigned to me plus unclaimed tasks of my roles, soonest due first."""
    query = db.select(TaskRecord).where(
        TaskRecord.state == "open",
        or_(
            TaskRecord.assignee_id == me.id,
            TaskRecord.assignee_id.is_(None) & TaskRecord.role.in_(me.role_keys),
        ),
    )
    if case_type:
        query = query.where(TaskRecord.case_type_key == case_type)
    if role:
        query = query.where(TaskRecord.role == role)
    return query.options(selectinload(TaskRecord.assignee)).order_by(
        TaskRecord.due_at.asc().nulls_last(), TaskRecord.created_at, TaskRecord.id
    )


@bp.get("/")
def index():
    me = user()
    case_type = request.args.get("case_type") or None
    role = request.args.get("role") or None
    page = db.paginate(
        inbox_query(me, case_type, role), per_page=PER_PAGE, max_per_page=200, error_out=False
    )
    return render_template(
        "inbox/index.html",
        page=page,
        case_types=case_type_names(),
        roles=[r for r in ROLES if r in me.role_keys],
        selected={"case_type": case_type, "role": role},
        now=datetime.now(UTC),
    )


# --- the task page ------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskActions:
    """What this user may do with this task now, and if nothing, why (shown on the page)."""

    blocked: str | None
    blocked_kind: str | None
    can_claim: bool
    can_unclaim: bool
    can_complete: bool


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
    return TaskActions(
        blocked=blocked,
        blocked_kind=kind,
        can_claim=blocked is None and row.assignee_id is None,
        can_unclaim=is_open
        and row.assignee_id is not None
        and (row.assignee_id == me.id or can_manage_tasks(me)),
        can_complete=blocked is None,
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
    return render_template(
        "inbox/task.html",
        task=row,
        case=case,
        form=form,
        problem=problem,
        general=general or [],
        actions=task_actions(row, me),
        key_figures=data_items(case.data, KEY_FIGURES),
        recommenders=_recommenders(row),
        submitted=_submitted_data(row) if row.state == "completed" else [],
        now=datetime.now(UTC),
    ), status


@bp.route("/tasks/<int:task_id>", methods=["GET", "POST"])
def task(task_id: int):
    me = user()
    row = get_task(task_id, me)
    form_cls = forms.get_form_class(row.form_key)
    if request.method == "POST":
        return _complete(row, form_cls, me)
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
        return _render_task(row, me, form, sentence(exc.message), status=exc.status)
    flash(f"Completed “{row.title}”.", "success")
    return redirect(url_for("cases.detail", case_id=case.id))


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
    back = safe_next(request.form.get("next"), url_for(".task", task_id=task_id))
    try:
        row = unclaim_task(task_id, user(), reason=request.form.get("reason", "")[:500])
    except EngineError as exc:
        flash(sentence(exc.message), "error")
        return redirect(back)
    flash(f"“{row.title}” is back in the {ROLES.get(row.role, row.role)} queue.", "success")
    return redirect(back)
