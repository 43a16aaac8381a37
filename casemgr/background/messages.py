"""Payment messages for cases whose customer now owes nothing, however that came about.

Payments posted through the API or a CSV import deliver ``payment_received`` in their own
transaction. A balance can also reach zero by a credit memo, a write-off or the ERP writing
the ledger directly; this sweep, run every minute, delivers the message then. It looks only
at the cases waiting for the message (the ``awaiting`` index), one transaction per case,
with the case row claimed like a timer so two workers never deliver it twice.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from casemgr.engine.errors import CaseBroken, EngineError
from casemgr.engine.messages import deliver_in_transaction
from casemgr.engine.payments import PAYMENT_MESSAGE
from casemgr.engine.timers import flag_broken
from casemgr.extensions import db
from casemgr.ledger.metrics import UnknownCustomer, find_customer
from casemgr.ledger.operations import customer_open_balance
from casemgr.models import Case


def waiting_for_payment() -> list[tuple[int, str]]:
    query = (
        select(Case.id, Case.customer_number)
        .where(
            Case.status == "open",
            Case.broken.is_(None),
            Case.awaiting.like(f"%,{PAYMENT_MESSAGE},%"),
            Case.customer_number.is_not(None),
        )
        .order_by(Case.id)
    )
    return [(case_id, number) for case_id, number in db.session.execute(query).all()]


def deliver_payment_messages() -> list[int]:
    """Deliver ``payment_received`` to each waiting case whose customer owes nothing."""
    cleared: dict[str, bool] = {}
    delivered = []
    for case_id, number in waiting_for_payment():
        if number not in cleared:
            cleared[number] = _owes_nothing(number)
            db.session.rollback()  # end the read transaction before taking a row lock
        if cleared[number] and _deliver(case_id):
            delivered.append(case_id)
    return delivered


def _owes_nothing(number: str) -> bool:
    try:
        return customer_open_balance(find_customer(number)) <= Decimal("0.00")
    except UnknownCustomer:
        return False


def _deliver(case_id: int) -> bool:
    query = select(Case).where(Case.id == case_id, Case.status == "open")
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    case = db.session.execute(query).scalar()
    if case is None:
        db.session.rollback()
        return False
    payload = {"paid_in_full": True, "balance": "0.00"}
    try:
        delivered = deliver_in_transaction(case, PAYMENT_MESSAGE, payload, None)
        db.session.commit()
    except CaseBroken as exc:  # flagged, so the sweep does not fail on it every minute
        db.session.rollback()
        flag_broken(case_id, exc.message)
        return False
    except (EngineError, StaleDataError):  # refused, or a person moved the case meanwhile
        db.session.rollback()
        return False
    return delivered
