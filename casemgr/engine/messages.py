"""BPMN messages delivered to waiting cases (e.g. a payment that clears a referred account)."""

from __future__ import annotations

from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition

from casemgr.engine.cases import _advance, _commit_or_conflict
from casemgr.engine.errors import CorruptCaseState
from casemgr.engine.step import StepContext
from casemgr.engine.timers import mark_broken
from casemgr.extensions import db
from casemgr.models import Case, User


def cases_awaiting(name: str, customer_number: str | None = None) -> list[Case]:
    """Open cases waiting for a message, found by the index, never by loading workflows."""
    query = db.select(Case).where(Case.status == "open", Case.awaiting.like(f"%,{name},%"))
    if customer_number is not None:
        query = query.where(Case.customer_number == customer_number)
    return list(db.session.execute(query.order_by(Case.id)).scalars())


def deliver_in_transaction(case: Case, name: str, payload: dict, actor: User | None) -> bool:
    """Deliver within the caller's transaction; False when the case does not wait for it."""
    if not case.awaiting or f",{name}," not in case.awaiting:
        return False
    if CorruptCaseState.is_flag(case.broken):
        return False  # its stored state does not load: a payment or promise must not fail on it
    ctx = StepContext(case, actor)
    ctx.record("message_received", message=name, payload=payload)

    def act(wf, _parsed):
        wf.send_event(BpmnEvent(MessageEventDefinition(name), payload=dict(payload)))
        return wf

    try:
        _advance(case, actor, ctx, act)
    except CorruptCaseState as exc:
        # Its state did not load, so nothing of this case changed: flag it within the
        # caller's transaction, and the payment or promise goes on for every other case.
        mark_broken(case, exc.flag_message)
        return False
    return True


def deliver_message(case_id: int, name: str, payload: dict, actor: User | None = None) -> bool:
    case = db.session.get(Case, case_id)
    if case is None:
        return False
    try:
        delivered = deliver_in_transaction(case, name, payload, actor)
    except Exception:
        db.session.rollback()
        raise
    _commit_or_conflict(case_id)
    return delivered
