"""Engine facts turned into notices: a task arriving in a queue, an escalation, a decision on
someone's request, a broken promise to pay.

The engine calls ``on_step`` once per batch of case events; the notices are worked out when
the transaction commits (``_route`` below, a ``before_commit`` hook), from everything the
transaction did. Notification rows other code adds (a diagram's ``notify`` operation, the
promise review, delegations) pass through the same choice of each recipient, so whatever
made a notification, the person's preferences decide whether it rings the bell and whether
it is e-mailed.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable

from flask import has_app_context
from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session

from casemgr import forms
from casemgr.extensions import db
from casemgr.models import (
    ROLES,
    Case,
    Notification,
    NotificationPreference,
    PromiseToPay,
    Role,
    TaskRecord,
    User,
    user_roles,
)
from casemgr.notify.dispatch import Notice, deliver, isolated
from casemgr.notify.pending import (
    Pending,
    StepFacts,
    alive,
    has_work,
    is_routed,
    mark_routed,
    record_step,
    take,
    unrouted_notes,
)
from casemgr.notify.prefs import DEFAULTS, group_of_row

ESCALATION_MARK = "escalat"
log = logging.getLogger(__name__)


def on_step(case: Case, actor: User | None, events: list[tuple[str, dict]]) -> None:
    """The engine's hook: remember this step's events until the transaction commits."""
    record_step(db.session, case, actor.id if actor is not None else None, events)


@event.listens_for(Session, "before_commit")
def _route(session: Session) -> None:
    if not has_app_context() or session is not db.session() or not has_work(session):
        return
    session.flush()  # every row gets its id; after_flush tracks the last inserts
    state = take(session)
    if state is None:
        return
    try:
        notices = _gather(state)
    except Exception:
        log.exception("notifications could not be worked out; the work they report goes on")
        return
    if notices:
        isolated(lambda: deliver(notices))


def _gather(state: Pending) -> list[Notice]:
    """Who hears of what the transaction did. It only reads, so it needs no savepoint of its
    own: the usual step tells nobody (new-task notices are opt-in), and then costs no
    SAVEPOINT round trips; writing the notices is isolated."""
    notes = [n for n in {id(n): n for n in state.notes}.values() if alive(n)]
    derived = _step_notices(state)
    from_rows = _note_notices([n for n in notes if not is_routed(n)])
    _one_of_each(derived, notes, from_rows)
    return [*derived, *from_rows]


def _one_of_each(derived: list[Notice], notes: list[Notification], rows: list[Notice]) -> None:
    """A diagram that announces an event itself (the hold release tells the managers of its
    escalation, kind "escalation") and our notice of the same event: the diagram's entry is
    the bell, ours carries the e-mail by the person's own choice for that kind."""
    told = {(n.user_id, n.case_id, n.kind) for n in notes}
    ours = {(n.user.id, n.case_id, n.kind) for n in derived}
    for notice in derived:
        notice.bell = (notice.user.id, notice.case_id, notice.kind) not in told
    for notice in rows:
        notice.mail = (notice.user.id, notice.case_id, notice.kind) not in ours


# --- notifications others created -------------------------------------------------------


def _note_key(note: Notification) -> str:
    """Stable for one row: who, what, which case, when (row ids may be reused on SQLite)."""
    raw = f"{note.user_id}|{note.kind}|{note.case_id}|{note.message}|{note.created_at}"
    return f"note:{hashlib.sha256(raw.encode()).hexdigest()[:32]}"


def _note_notices(notes: Iterable[Notification]) -> list[Notice]:
    users = _users({n.user_id for n in notes})
    result = []
    for note in notes:
        user = users.get(note.user_id)
        if user is None:
            continue
        first_line = note.message.splitlines()[0] if note.message else note.kind
        result.append(
            Notice(
                user=user,
                kind=note.kind,
                message=note.message,
                subject=_clip(first_line),
                key=_note_key(note),
                group=group_of_row(note.kind),
                case_id=note.case_id,
                row=note,
            )
        )
    return result


# --- what the steps did -------------------------------------------------------------------


def _role_members_query(opted_in_only: bool):
    users, roles, prefs = User.__table__, Role.__table__, NotificationPreference.__table__
    query = (
        select(users.c.id)
        .join(user_roles, user_roles.c.user_id == users.c.id)
        .join(roles, roles.c.id == user_roles.c.role_id)
        .where(roles.c.key == bindparam("role"), users.c.active.is_(True))
        .order_by(users.c.id)
    )
    if opted_in_only:
        opted_in = select(prefs.c.user_id).where(
            prefs.c.kind == bindparam("group"), prefs.c.enabled.is_(True)
        )
        query = query.where(users.c.id.in_(opted_in))
    return query


# Ids first, built once: every step that opens a task asks this, and most often the answer
# is nobody (new-task notices are opt-in), so no User object need be built for it.
_ROLE_MEMBERS = {False: _role_members_query(False), True: _role_members_query(True)}


class _Recipients:
    """A role's active members who may want a kind of notice, loaded once per transaction.

    For a kind nobody receives by default (a new task), only members who opted in are
    candidates: a step in a 200-person queue costs one small query, not 200 users."""

    def __init__(self) -> None:
        self._roles: dict[tuple[str, str], list[User]] = {}

    def role(self, key: str, group: str) -> list[User]:
        if (key, group) not in self._roles:
            opted_in_only = not DEFAULTS[group].wants_anything
            query = _ROLE_MEMBERS[opted_in_only]
            ids = list(db.session.execute(query, {"role": key, "group": group}).scalars())
            users = _users(set(ids))
            self._roles[(key, group)] = [users[i] for i in ids if i in users]
        return self._roles[(key, group)]


def _step_notices(state: Pending) -> list[Notice]:
    by_case: dict[int, list[StepFacts]] = defaultdict(list)
    for facts in state.steps:
        if alive(facts.case) and facts.case.id is not None:
            by_case[facts.case.id].append(facts)
    new_tasks: dict[int, list[TaskRecord]] = defaultdict(list)
    for row in {id(t): t for t in state.tasks}.values():
        if alive(row) and row.state == "open":
            new_tasks[row.case_id].append(row)
    recipients = _Recipients()
    notices: list[Notice] = []
    for case_id, steps in by_case.items():
        case = steps[0].case
        actors = {s.actor_id for s in steps if s.actor_id is not None}
        events = [e for s in steps for e in s.events]
        timer = any(kind == "timer_fired" for kind, _ in events)
        for row in sorted(new_tasks.get(case_id, []), key=lambda r: r.id):
            notices.extend(_task_notices(case, row, timer, actors, recipients))
        for kind, detail in events:
            if kind == "task_completed":
                notices.extend(_decision_notices(case, detail, actors))
    return notices


def _task_notices(
    case: Case, row: TaskRecord, timer: bool, actors: set[int], recipients: _Recipients
) -> list[Notice]:
    """A new task: to its assignee, else to every active member of its role; an escalation
    when a timer raised it or its name says so. Nobody hears of what they just did."""
    escalation = timer or ESCALATION_MARK in f"{row.name} {row.title}".lower()
    kind = "escalation" if escalation else "task"
    people = [row.assignee] if row.assignee is not None else recipients.role(row.role, kind)
    due = f", due {row.due_at:%Y-%m-%d %H:%M} UTC" if row.due_at else ""
    queue = f"in the {ROLES.get(row.role, row.role)} queue"
    where = "for you" if row.assignee is not None else queue
    if escalation:
        message = f"Escalation: “{row.title}” {where} on {case.title}{due}."
        subject = f"Escalation: {row.title}"
    else:
        message = f"New task {where}: “{row.title}” on {case.title}{due}."
        subject = f"New task: {row.title}"
    return [
        Notice(
            user=user,
            kind=kind,
            message=message,
            subject=_clip(f"{subject} ({case.title})"),
            key=f"{kind}:task{row.id}:u{user.id}",
            group=kind,
            case_id=case.id,
        )
        for user in people
        if user is not None and user.active and user.id not in actors
    ]


def _decision_notices(case: Case, detail: dict, actors: set[int]) -> list[Notice]:
    """An approval task completed with a decision: tell who asked (the case's starter and
    whoever completed the tasks its four-eyes rule names, i.e. who recommended the amount)."""
    task_id = detail.get("task_id")
    row = db.session.get(TaskRecord, task_id) if isinstance(task_id, int) else None
    if row is None or not (row.four_eyes or "approv" in row.name.lower()):
        return []
    field, value = _decision(detail.get("data") or {})
    if field is None:
        return []
    label = _choice_label(row.form_key, field, value)
    by = row.completed_by.label if row.completed_by else "the approver"
    requesters = _requesters(case, row)
    message = f"Decision on {case.title}: {label} (“{row.title}”, by {by})."
    return [
        Notice(
            user=user,
            kind="decision",
            message=message,
            subject=_clip(f"Decision: {label} on {case.title}"),
            key=f"decision:task{row.id}:u{user.id}",
            group="decision",
            case_id=case.id,
        )
        for user in requesters
        if user.active and user.id not in actors
    ]


def _decision(data: dict) -> tuple[str | None, str]:
    for key, value in data.items():
        if key.endswith("decision") and isinstance(value, str) and value:
            return key, value
    return None, ""


def _choice_label(form_key: str | None, field: str, value: str) -> str:
    """The decision as the approver saw it on the form ("Approve", "Send back")."""
    form_cls = forms.get_form_class(form_key)
    if form_cls is not None:
        bound = getattr(form_cls(), field, None)
        for choice in getattr(bound, "choices", None) or []:
            if isinstance(choice, tuple | list) and len(choice) == 2 and choice[0] == value:
                return str(choice[1])
    return value.replace("_", " ").capitalize()


def _requesters(case: Case, row: TaskRecord) -> list[User]:
    people: dict[int, User] = {}
    if case.started_by is not None:
        people[case.started_by.id] = case.started_by
    if row.four_eyes:
        query = (
            select(User)
            .join(TaskRecord, TaskRecord.completed_by_id == User.id)
            .where(
                TaskRecord.case_id == case.id,
                TaskRecord.name.in_(row.four_eyes),
                TaskRecord.state == "completed",
            )
        )
        for user in db.session.execute(query).scalars().unique():
            people[user.id] = user
    return list(people.values())


# --- broken promises ------------------------------------------------------------------------


def notify_broken_promise(promise: PromiseToPay, recipients: Iterable[User] | None = None) -> None:
    """Tell people that ``promise`` was broken, each by their preferences (kind
    ``promise_broken``), inside the caller's transaction; e-mail goes out after its commit.

    ``recipients`` defaults to the customer's sales rep and every active AR specialist. Call
    it once per newly broken promise instead of adding Notification rows; rows the caller
    already added in this transaction for the same person and promise are reused, not
    doubled. A second call for the same promise in one transaction adds nothing."""
    people = list(recipients) if recipients is not None else _promise_recipients(promise)
    customer = promise.customer
    text = (
        f"Broken promise to pay: {customer.name} ({customer.number}) promised "
        f"{promise.amount:,.2f} by {promise.promised_date.isoformat()} and has not paid it. "
        "Call the customer."
    )
    existing = {
        n.user_id: n
        for n in unrouted_notes(db.session)
        if n.kind == "promise_broken" and n.case_id == promise.case_id
    }
    notices = [
        Notice(
            user=user,
            kind="promise_broken",
            message=existing[user.id].message if user.id in existing else text,
            subject=_clip(f"Broken promise to pay: {customer.name} ({customer.number})"),
            key=f"promise_broken:p{promise.id}:u{user.id}",
            group="promise_broken",
            case_id=promise.case_id,
            row=mark_routed(existing[user.id]) if user.id in existing else None,
        )
        for user in {u.id: u for u in people}.values()
    ]
    isolated(lambda: deliver(notices))


def _promise_recipients(promise: PromiseToPay) -> list[User]:
    query = select(User).join(User.roles).where(Role.key == "ar_specialist", User.active)
    people = {u.id: u for u in db.session.execute(query).scalars().unique()}
    rep_name = promise.customer.sales_rep
    if rep_name:
        rep = db.session.execute(
            select(User).where(User.username == rep_name, User.active)
        ).scalar()
        if rep is not None:
            people[rep.id] = rep
    return list(people.values())


# --- helpers ------------------------------------------------------------------------------


def _users(ids: set[int]) -> dict[int, User]:
    if not ids:
        return {}
    rows = db.session.execute(select(User).where(User.id.in_(ids))).scalars()
    return {u.id: u for u in rows}


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
