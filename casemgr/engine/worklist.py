"""Work management around the task index: follow-up dates, priorities, delegation,
reassigning everything of a person who is out, saved inbox views, and approval decisions.

Each action is one transaction that also appends the case event saying who did it and why.
Claiming, unclaiming, assigning and completing stay in casemgr.engine.cases; the actions
here that hand tasks on (reassign-all, approval decisions) call those per task, so the same
role, four-eyes and state rules hold, and one task's refusal stops no other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session
from wtforms import SelectField, TextAreaField

from casemgr import forms
from casemgr.engine import access, cases, clock
from casemgr.engine.errors import Conflict, EngineError, Forbidden, Invalid, NotFound
from casemgr.engine.inbox import VIEW_PARAMS, parse_params, parse_priority
from casemgr.extensions import db
from casemgr.models import (
    PRIORITIES,
    ROLES,
    Case,
    CaseEvent,
    Customer,
    Notification,
    SavedView,
    TaskRecord,
    User,
)

MAX_REASON = 500
MAX_FOLLOW_UP = timedelta(days=366)
# Rows delegate()/take_back() are handing on in this transaction: their own events and
# notifications say what happened, so the flush hook must not read them as a delegation ending.
_HANDING_ON = "casemgr_worklist_handing_on"


def _reason(text: str | None) -> str:
    return (text or "").strip()[:MAX_REASON]


def _event(row: TaskRecord, actor: User, kind: str, **detail) -> None:
    db.session.add(
        CaseEvent(
            case=row.case,
            at=clock.now(),
            actor=actor.username,
            kind=kind,
            detail={"task": row.name, "title": row.title, "task_id": row.id, **detail},
        )
    )


def _notify(who: User | int | None, message: str, row: TaskRecord, kind: str) -> None:
    user_id = who.id if isinstance(who, User) else who
    if user_id is None:
        return
    db.session.add(
        Notification(
            user_id=user_id,
            kind=kind,
            message=message[:2000],
            case_id=row.case_id,
            created_at=clock.now(),
        )
    )


def _save(row: TaskRecord) -> TaskRecord:
    """Bump the case's version (racing changes conflict) and commit, or roll back."""
    cases._touch(row.case)
    try:
        cases._commit_or_conflict(row.case_id, row.id)
    except Exception:
        db.session.rollback()
        raise
    finally:
        db.session.info.pop(_HANDING_ON, None)
    return row


def find_user(username: str | None) -> User | None:
    if not username:
        return None
    return db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none()


def _open(row: TaskRecord) -> None:
    if row.state != "open":
        raise Conflict(cases._closed_message(row))


# --- follow-up dates --------------------------------------------------------------------------


def parse_follow_up(raw) -> datetime | None:
    """A follow-up moment from a date ("2026-05-07": that day, 00:00 UTC, since screens show
    UTC) or an ISO 8601 time; None or "" clears it. Invalid for anything else."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise Invalid("give the follow-up date as YYYY-MM-DD", {"until": ["not a date"]})
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day, time(0), tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(
            "give the follow-up date as YYYY-MM-DD", {"until": [f"{text[:40]!r} is not a date"]}
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def set_follow_up(task_id: int, until: datetime | None, user: User, reason: str = "") -> TaskRecord:
    """Hide a task from the inbox until `until` ("call back Thursday"); None shows it again.

    Parking a task makes it yours: a queue task claimed by nobody would vanish for the whole
    role, so it is claimed first (refused as a claim would be: role, four-eyes, another's).
    """
    row = cases.task_to_change(task_id, user)
    cases.check_can_work(row, user)
    now = clock.now()
    if until is not None and until <= now:
        raise Invalid(
            "the follow-up date must be in the future",
            {"until": ["must be later than now; clear it to show the task again"]},
        )
    if until is not None and until > now + MAX_FOLLOW_UP:
        raise Invalid("a follow-up date within a year", {"until": ["at most a year ahead"]})
    if row.assignee_id is None:
        row.assignee = user
        _event(row, user, "task_claimed", reason="claimed to set a follow-up date")
    row.follow_up_at = until
    if until is None:
        _event(row, user, "follow_up_cleared", reason=_reason(reason))
    else:
        _event(row, user, "follow_up_set", until=until.isoformat(), reason=_reason(reason))
    return _save(row)


# --- priority ---------------------------------------------------------------------------------


def set_priority(task_id: int, priority, user: User, reason: str = "") -> TaskRecord:
    """The assignee, or a manager for any task, ranks it (1 low ... 4 urgent)."""
    row = cases.task_to_change(task_id, user)
    if row.assignee_id != user.id and not access.can_manage_tasks(user):
        raise Forbidden("only the assignee, a credit manager or an admin may set the priority")
    _open(row)
    level = parse_priority(priority) if priority is not None else None
    if level is None:
        names = ", ".join(f"{n} ({k})" for k, n in PRIORITIES.items())
        raise Invalid("unknown priority", {"priority": [f"one of {names}"]})
    if level != row.priority:
        _event(
            row,
            user,
            "task_priority",
            was=PRIORITIES.get(row.priority, row.priority),
            now=PRIORITIES[level],
            reason=_reason(reason),
        )
        row.priority = level
        _save(row)
    return row


# --- delegation -------------------------------------------------------------------------------


def delegate(task_id: int, username: str, user: User, reason: str = "") -> TaskRecord:
    """Hand a task to someone else while its owner stays informed.

    The owner is whoever holds the task (or the caller, who claims an unclaimed one); the
    assignee, or a manager or admin, may delegate. The delegate must hold the task's role
    and be allowed by the four-eyes rule. The owner is told when it is delegated by someone
    else, and when the delegate completes it, gives it back or it moves on (see the hook).
    """
    row = cases.task_to_change(task_id, user)
    manager = access.can_manage_tasks(user)
    if row.assignee_id is None:
        cases.check_can_work(row, user)  # delegating from the queue claims it first
    elif row.assignee_id != user.id and not manager:
        raise Forbidden("only the assignee, a credit manager or an admin may delegate a task")
    _open(row)
    target = find_user(username)
    if target is None or not target.active:
        raise Invalid(f"unknown user {username!r}", {"user": [f"unknown user {username!r}"]})
    owner = row.delegated_from or row.assignee or user
    if target.id == (row.assignee_id or user.id):
        raise Invalid("the task is already theirs", {"user": [f"{username} already holds it"]})
    if row.role not in target.role_keys:
        message = f"{username} does not hold the {row.role} role"
        raise Invalid(message, {"user": [message]})
    problem = cases.four_eyes_violation(row, target)
    if problem:
        message = f"{username} cannot take this task: {problem}"
        raise Invalid(message, {"user": [message]})
    back_to_owner = target.id == owner.id
    db.session.info.setdefault(_HANDING_ON, set()).add(row.id)
    previous = row.assignee.username if row.assignee else None
    row.assignee = target
    row.delegated_from = None if back_to_owner else owner
    _event(
        row,
        user,
        "task_delegated",
        **{"from": previous, "to": target.username, "owner": owner.username},
        reason=_reason(reason),
    )
    why = f": {_reason(reason)}" if reason.strip() else ""
    verb = "gave back" if back_to_owner else "delegated"
    _notify(target, f"{user.label} {verb} “{row.title}” to you{why}", row, "task_delegated")
    if owner.id != user.id and not back_to_owner:
        _notify(
            owner,
            f"{user.label} delegated your task “{row.title}” to {target.label}{why}",
            row,
            "delegation",
        )
    return _save(row)


def take_back(task_id: int, user: User, reason: str = "") -> TaskRecord:
    """The owner of a delegated task takes it back (a manager may give it back for them)."""
    row = cases.task_to_change(task_id, user)
    _open(row)
    if row.delegated_from_id is None:
        raise Conflict("this task is not delegated")
    if row.delegated_from_id != user.id and not access.can_manage_tasks(user):
        raise Forbidden("only the task's owner, a credit manager or an admin may take it back")
    owner, delegate_user = row.delegated_from, row.assignee
    db.session.info.setdefault(_HANDING_ON, set()).add(row.id)
    row.assignee = owner
    row.delegated_from = None
    _event(
        row,
        user,
        "delegation_ended",
        **{"from": delegate_user.username if delegate_user else None, "to": owner.username},
        reason=_reason(reason),
    )
    if delegate_user is not None and delegate_user.id != user.id:
        _notify(
            delegate_user,
            f"{user.label} took back “{row.title}” from you",
            row,
            "delegation",
        )
    return _save(row)


@event.listens_for(Session, "before_flush")
def _keep_owners_informed(session: Session, _context, _instances) -> None:
    """A delegated task tells its owner what became of it, whoever moved it and however:
    completed by the delegate, withdrawn by the process, or unclaimed, assigned or reassigned
    through the engine's own actions (which know nothing of delegation). Then it is no longer
    delegated."""
    handing_on = session.info.get(_HANDING_ON, ())
    for obj in list(session.dirty):
        if not isinstance(obj, TaskRecord) or obj.delegated_from_id is None:
            continue
        if obj.id in handing_on:
            continue
        state = inspect(obj)
        moved = state.attrs.assignee.history.has_changes() or (
            state.attrs.assignee_id.history.has_changes()
        )
        finished = state.attrs.state.history.has_changes() and obj.state != "open"
        if not (moved or finished):
            continue
        if finished and obj.state == "completed":
            who = obj.completed_by.label if obj.completed_by else "someone"
            text = f"{who} completed “{obj.title}”, which you delegated"
        elif finished:
            text = f"“{obj.title}”, which you delegated, was withdrawn: the process moved on"
        elif obj.assignee is None:
            text = f"“{obj.title}”, which you delegated, is back in its queue"
        else:
            text = f"“{obj.title}”, which you delegated, is now with {obj.assignee.label}"
        session.add(
            Notification(
                user_id=obj.delegated_from_id,
                kind="delegation",
                message=text,
                case_id=obj.case_id,
                created_at=clock.now(),
            )
        )
        if not finished:
            obj.delegated_from_id = None
            obj.delegated_from = None


# --- reassigning everything of a person who is out --------------------------------------------


def open_tasks_of(user_id: int) -> list[int]:
    return list(
        db.session.execute(
            db.select(TaskRecord.id)
            .where(TaskRecord.state == "open", TaskRecord.assignee_id == user_id)
            .order_by(TaskRecord.due_at.is_(None), TaskRecord.due_at, TaskRecord.id)
        ).scalars()
    )


def reassign_all(from_username: str, to_username: str | None, user: User, reason: str) -> dict:
    """Move every open task of `from_username` to `to_username`, or back to their queues.

    A task the new person may not take (another role, the four-eyes rule) goes back to its
    role's queue instead, and its result says why: nothing stays with a person who is out.
    Each task is its own transaction, through the engine's assign and unclaim.
    """
    if not access.can_manage_tasks(user):
        raise Forbidden("only a credit manager or an admin may reassign someone's tasks")
    absent = find_user(from_username)
    if absent is None:
        raise NotFound(f"no user {from_username!r}")
    target = None
    if to_username:
        target = find_user(to_username)
        if target is None or not target.active:
            raise Invalid(
                f"unknown user {to_username!r}", {"to": [f"unknown user {to_username!r}"]}
            )
        if target.id == absent.id:
            raise Invalid("choose someone else", {"to": ["that is the same person"]})
    why = _reason(reason) or "reassigned"
    text = f"all of {absent.username}'s tasks reassigned: {why}"
    results: dict[str, dict] = {}
    for task_id in open_tasks_of(absent.id):
        results[str(task_id)] = _reassign_one(task_id, target, user, text)
    moved = sum(1 for r in results.values() if r["status"] == 200 and r.get("to"))
    queued = sum(1 for r in results.values() if r["status"] == 200 and not r.get("to"))
    return {
        "from": absent.username,
        "to": target.username if target else None,
        "moved": moved,
        "queued": queued,
        "failed": len(results) - moved - queued,
        "results": results,
    }


def _reassign_one(task_id: int, target: User | None, user: User, text: str) -> dict:
    note = None
    if target is not None:
        try:
            cases.assign_task(task_id, target.username, user, text)
            return {"status": 200, "to": target.username}
        except Invalid as exc:
            db.session.rollback()
            note = f"{exc.message}: back in its queue"
        except EngineError as exc:
            db.session.rollback()
            return {"status": exc.status, "error": exc.message}
    try:
        cases.unclaim_task(task_id, user, text)
    except EngineError as exc:
        db.session.rollback()
        return {"status": exc.status, "error": exc.message}
    result: dict = {"status": 200, "to": None}
    if note:
        result["note"] = note
    return result


def workload(user: User) -> list[tuple[User, int, int]]:
    """Everyone active with a role that works tasks, with their open and overdue task counts
    (a manager's view of who holds what, to reassign the work of someone who is out)."""
    if not access.can_manage_tasks(user):
        raise Forbidden("only a credit manager or an admin may see everyone's work")
    now = clock.now()
    counts = dict(
        db.session.execute(
            db.select(TaskRecord.assignee_id, db.func.count(TaskRecord.id))
            .where(TaskRecord.state == "open", TaskRecord.assignee_id.is_not(None))
            .group_by(TaskRecord.assignee_id)
        ).all()
    )
    overdue = dict(
        db.session.execute(
            db.select(TaskRecord.assignee_id, db.func.count(TaskRecord.id))
            .where(
                TaskRecord.state == "open",
                TaskRecord.assignee_id.is_not(None),
                TaskRecord.due_at < now,
            )
            .group_by(TaskRecord.assignee_id)
        ).all()
    )
    people = db.session.execute(db.select(User).order_by(User.username)).scalars()
    working = ("ar_specialist", "credit_manager", "controller", "sales_rep")
    return [
        (person, counts.get(person.id, 0), overdue.get(person.id, 0))
        for person in people
        if (person.active and person.has_role(*working)) or counts.get(person.id)
    ]


# --- saved views ------------------------------------------------------------------------------


def views_for(user: User) -> list[SavedView]:
    """My views, then those shared with one of my roles, each by name."""
    rows = db.session.execute(
        db.select(SavedView).where(
            (SavedView.owner_id == user.id) | SavedView.role.in_(sorted(user.role_keys))
        )
    ).scalars()
    return sorted(rows, key=lambda v: (v.owner_id is None, v.role or "", v.name.lower()))


def can_share_with(user: User, role: str) -> bool:
    return role in user.role_keys or access.can_manage_tasks(user)


def save_view(user: User, name, params, role: str | None = None) -> SavedView:
    """Save (or replace, by name) a view of the inbox: mine, or shared with a role."""
    errors: dict[str, list[str]] = {}
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 80:
        errors["name"] = ["give the view a name of 1 to 80 characters"]
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in params.items()
    ):
        errors["params"] = ["must be an object of inbox parameters to values"]
        params = {}
    unknown = sorted(k for k in params if k not in VIEW_PARAMS)
    if unknown:
        errors["params"] = [f"unknown inbox parameter(s): {', '.join(unknown)}"]
    kept = {k: str(v) for k, v in params.items() if k in VIEW_PARAMS and v not in ("", None)}
    _query, problems = parse_params(kept)
    for key, messages in problems.items():
        errors.setdefault("params", []).extend(f"{key}: {m}" for m in messages)
    if role is not None and role not in ROLES:
        errors["role"] = [f"unknown role {role!r}"]
    if errors:
        raise Invalid("the view cannot be saved", errors)
    if role is not None and not can_share_with(user, role):
        raise Forbidden(f"you may share views only with your own roles, not {role}")
    where = (SavedView.role == role) if role else (SavedView.owner_id == user.id)
    view = db.session.execute(
        db.select(SavedView).where(where, SavedView.name == name)
    ).scalar_one_or_none()
    if view is None:
        view = SavedView(
            name=name, owner_id=None if role else user.id, role=role, created_by_id=user.id
        )
        db.session.add(view)
    elif role and view.created_by_id != user.id and not access.can_manage_tasks(user):
        raise Forbidden("another person shared this view; only they or a manager may change it")
    view.params = kept
    db.session.commit()
    return view


def delete_view(view_id: int, user: User) -> None:
    view = db.session.get(SavedView, view_id) if 0 < view_id < 2**31 else None
    visible = view is not None and (
        view.owner_id == user.id or (view.role is not None and view.role in user.role_keys)
    )
    if not visible:
        raise NotFound(f"no view {view_id}")
    if view.owner_id is None and not (
        view.created_by_id == user.id or access.can_manage_tasks(user)
    ):
        raise Forbidden("only whoever shared this view, a credit manager or an admin may delete it")
    db.session.delete(view)
    db.session.commit()


# --- approvals --------------------------------------------------------------------------------

ACTIONS = ("approve", "reject", "send_back")
ACTION_LABELS = {"approve": "Approve", "reject": "Reject", "send_back": "Send back"}
_ACTION_PREFIXES = {
    "approve": ("approve", "release"),
    "reject": ("decline", "reject", "refuse", "deny"),
    "send_back": ("send_back",),
}


@dataclass(frozen=True)
class DecisionForm:
    """How a task's form takes an inline decision: the choice field, the value each action
    maps to (absent when the form has no such choice) and the comment field."""

    decision_field: str | None
    values: dict[str, str] = field(default_factory=dict)
    comment_field: str | None = None

    def data(self, action: str, comment: str) -> dict | None:
        value = self.values.get(action)
        if self.decision_field is None or value is None:
            return None
        data = {self.decision_field: value}
        if self.comment_field and comment:
            data[self.comment_field] = comment
        return data


_DECISION_FORMS: dict[str | None, DecisionForm] = {}


def decision_form(form_key: str | None) -> DecisionForm:
    """The decision field of an approval form: the choice field named `decision` or ending in
    `_decision`; approve, reject and send back map to the choices that start so."""
    if form_key in _DECISION_FORMS:
        return _DECISION_FORMS[form_key]
    form_cls = forms.get_form_class(form_key)
    found = DecisionForm(None)
    if form_cls is not None:
        form = form_cls()
        choice = next(
            (
                f
                for f in form
                if isinstance(f, SelectField)
                and (f.name == "decision" or f.name.endswith("_decision"))
            ),
            None,
        )
        comment = next(
            (f.name for f in form if isinstance(f, TextAreaField) and f.name.endswith("comment")),
            None,
        )
        if choice is not None:
            values: dict[str, str] = {}
            for value, _label in choice.choices or []:
                for action, prefixes in _ACTION_PREFIXES.items():
                    if action not in values and str(value).startswith(prefixes):
                        values[action] = str(value)
            found = DecisionForm(choice.name, values, comment)
    _DECISION_FORMS[form_key] = found
    return found


def _authority_problem(row: TaskRecord, user: User) -> str | None:
    if row.role in user.role_keys:
        return None
    return f"outside your authority: this approval needs the {ROLES.get(row.role, row.role)} role"


def decide(
    task_ids: Iterable,
    action: str,
    user: User,
    comment: str = "",
    comments: dict | None = None,
) -> dict[str, dict]:
    """Approve, reject or send back each task, as if alone: one refusal stops no other.

    Each task's own form says which choice the action is (see decision_form), and the
    completion goes through casemgr.engine.cases.complete_task, so the role (the authority
    matrix routes each approval to a role), four-eyes and state rules hold per task.
    """
    if action not in ACTIONS:
        raise Invalid("unknown action", {"action": [f"one of {', '.join(ACTIONS)}"]})
    comments = comments or {}
    results: dict[str, dict] = {}
    for raw in task_ids:
        key = str(raw)
        if not cases._is_task_id(raw):
            results[key] = {"status": 404, "error": f"no task {raw!r}"}
            continue
        text = comments.get(key) if isinstance(comments.get(key), str) else comment
        results[key] = _decide_one(int(raw), action, user, (text or "").strip()[:2000])
    return results


def _decide_one(task_id: int, action: str, user: User, comment: str) -> dict:
    try:
        row = cases.get_task(task_id, user)
        problem = _authority_problem(row, user)
        if problem:
            raise Forbidden(problem)
        data = decision_form(row.form_key).data(action, comment)
        if data is None:
            label = ACTION_LABELS[action].lower()
            raise Invalid(f"this task's form has no “{label}” choice: open the task to decide")
        cases.complete_task(task_id, data, user)
    except EngineError as exc:
        db.session.rollback()
        result = {"status": exc.status, "error": exc.message}
        if exc.errors:
            result["errors"] = exc.errors
        return result
    return {"status": 200, "action": action}


# --- what an approval needs -------------------------------------------------------------------


@dataclass
class Recommendation:
    task_title: str
    by: str | None
    at: datetime | None
    data: dict


@dataclass
class ApprovalFacts:
    """What a manager needs to decide without opening the case."""

    recommendation: Recommendation | None = None
    credit_limit: Decimal | None = None
    exposure: Decimal | None = None
    available: Decimal | None = None
    past_due: Decimal | None = None
    oldest_past_due_days: int | None = None
    requested: Decimal | None = None
    reasons: list[str] = field(default_factory=list)
    blocked: str | None = None
    actions: tuple[str, ...] = ()


def _money(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return None


def approval_facts(rows: list[TaskRecord], user: User) -> dict[int, ApprovalFacts]:
    """Facts for a page of approvals in a handful of queries: who recommended what (from the
    append-only timeline), the customer's limit, exposure and past dues (from the ledger),
    and whether this user may decide (authority, four-eyes)."""
    from casemgr.ledger.metrics import customer_summary

    if not rows:
        return {}
    case_ids = {row.case_id for row in rows}
    # One query puts the cases in the session, so row.case below is no query per row.
    db.session.execute(db.select(Case).where(Case.id.in_(case_ids))).scalars().all()
    done = db.session.execute(
        db.select(TaskRecord)
        .where(TaskRecord.case_id.in_(case_ids), TaskRecord.state == "completed")
        .order_by(TaskRecord.completed_at)
    ).scalars()
    completed: dict[int, list[TaskRecord]] = {}
    for task in done:
        completed.setdefault(task.case_id, []).append(task)
    entered: dict[int, dict] = {}
    events = db.session.execute(
        db.select(CaseEvent).where(
            CaseEvent.case_id.in_(case_ids), CaseEvent.kind == "task_completed"
        )
    ).scalars()
    for ev in events:
        task_ref = (ev.detail or {}).get("task_id")
        if task_ref is not None:
            entered[task_ref] = (ev.detail or {}).get("data") or {}
    numbers = {row.customer_number for row in rows if row.customer_number}
    known = set(
        db.session.execute(db.select(Customer.number).where(Customer.number.in_(numbers))).scalars()
    )
    summaries = {}
    today = clock.now().date()
    for number in known:
        summaries[number] = customer_summary(number, today)
    facts: dict[int, ApprovalFacts] = {}
    for row in rows:
        info = ApprovalFacts()
        data = row.case.data or {}
        mine = [t for t in completed.get(row.case_id, []) if t.name in (row.four_eyes or [])]
        if mine:
            last = mine[-1]
            info.recommendation = Recommendation(
                last.title,
                last.completed_by.label if last.completed_by else None,
                last.completed_at,
                entered.get(last.id, {}),
            )
            if user.id in {t.completed_by_id for t in mine}:
                info.blocked = (
                    f"four-eyes rule: you completed “{mine[-1].title}” on this case, so "
                    "someone else must decide"
                )
        summary = summaries.get(row.customer_number or "")
        if summary is not None:
            info.credit_limit = summary.credit_limit
            info.exposure = summary.exposure
            info.available = summary.available_credit
            info.past_due = summary.past_due
            info.oldest_past_due_days = summary.oldest_past_due_days
        info.requested = _money(data.get("requested_limit"))
        if info.credit_limit is None:
            info.credit_limit = _money(data.get("credit_limit"))
        reasons = data.get("approval_reasons")
        if isinstance(reasons, list):
            info.reasons = [str(r) for r in reasons][:5]
        info.blocked = info.blocked or _authority_problem(row, user)
        if info.blocked is None and row.assignee_id not in (None, user.id):
            info.blocked = f"claimed by {row.assignee.label}"
        info.actions = tuple(a for a in ACTIONS if a in decision_form(row.form_key).values)
        facts[row.id] = info
    return facts
