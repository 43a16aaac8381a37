"""What a transaction did that someone may want to hear about, collected until it commits.

The engine reports each step's events (``record_step``); the session itself tells which task
rows and notification rows were inserted (``after_flush`` sees every inserted object, also
those other flush hooks add). ``casemgr.notify.events`` turns the lot into notifications in
``before_commit``: by then a start has assigned its first task, a timer step has recorded
``timer_fired`` and every row has its id. A rollback (or a session closed without commit)
forgets everything, so a step that did not happen notifies nobody.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from casemgr.models import Case, Notification, TaskRecord

KEY = "casemgr_notify_pending"
# Set on Notification objects casemgr.notify made or already routed: never route them again.
ROUTED = "_casemgr_notify_routed"


@dataclass
class StepFacts:
    case: Case
    actor_id: int | None
    events: list[tuple[str, dict]]


@dataclass
class Pending:
    steps: list[StepFacts] = field(default_factory=list)
    tasks: list[TaskRecord] = field(default_factory=list)
    notes: list[Notification] = field(default_factory=list)
    # Keys of the notices delivered in this transaction (one event, one notice per person).
    delivered: set[str] = field(default_factory=set)


def pending(session: Session) -> Pending:
    return session.info.setdefault(KEY, Pending())


def record_step(session: Session, case: Case, actor_id: int | None, events: list) -> None:
    pending(session).steps.append(StepFacts(case, actor_id, list(events)))


def mark_routed(note: Notification) -> Notification:
    setattr(note, ROUTED, True)
    return note


def is_routed(note: Notification) -> bool:
    return bool(getattr(note, ROUTED, False))


def alive(obj) -> bool:
    """Still a row of this transaction (not deleted, not expunged, not rolled back)."""
    state = inspect(obj)
    return state.persistent or state.pending


def unrouted_notes(session: Session) -> list[Notification]:
    """Notification rows others added in this transaction and nobody routed yet."""
    seen = [*pending(session).notes, *(o for o in session.new if isinstance(o, Notification))]
    unique = {id(n): n for n in seen if not is_routed(n) and alive(n)}
    return list(unique.values())


def has_work(session: Session) -> bool:
    state = session.info.get(KEY)
    if state is not None and (state.steps or state.notes):
        return True
    return any(isinstance(o, Notification) and not is_routed(o) for o in session.new)


def take(session: Session) -> Pending | None:
    return session.info.pop(KEY, None)


@event.listens_for(Session, "after_flush")
def _track_inserts(session: Session, _flush_context) -> None:
    """``session.new`` still lists what this flush inserted, hooks' additions included."""
    tasks = [o for o in session.new if isinstance(o, TaskRecord)]
    notes = [o for o in session.new if isinstance(o, Notification) and not is_routed(o)]
    if tasks or notes:
        state = pending(session)
        state.tasks.extend(tasks)
        state.notes.extend(notes)


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(KEY, None)
