"""Payments through the ledger, and the BPMN message they send when a balance clears.

A collection referral waits for the message `payment_received`; it is delivered by the
system when a payment posted here (or imported) leaves the customer owing nothing, never
by a person checking.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from casemgr.engine import clock
from casemgr.engine.messages import cases_awaiting, deliver_in_transaction
from casemgr.extensions import db
from casemgr.ledger import metrics, operations
from casemgr.models import User

PAYMENT_MESSAGE = "payment_received"


def deliver_payment_messages(actor: User | None = None) -> list[int]:
    """In the caller's transaction: end the waits of cases whose customer now owes nothing."""
    delivered = []
    for case in cases_awaiting(PAYMENT_MESSAGE):
        if not case.customer_number:
            continue
        summary = metrics.customer_summary(case.customer_number, clock.now().date())
        if summary.open_balance <= Decimal("0.00"):
            payload = {"paid_in_full": True, "balance": "0.00"}
            if deliver_in_transaction(case, PAYMENT_MESSAGE, payload, actor):
                delivered.append(case.id)
    return delivered


def post_payment(
    customer_number: str,
    amount: Decimal | str,
    user: User,
    received_date: date | None = None,
    method: str = "check",
    reference: str | None = None,
    invoice_number: str | None = None,
) -> tuple[bool, list[int]]:
    """One transaction: the payment and every case it ends. Returns (cleared, case ids)."""
    try:
        cleared = operations.post_payment(
            customer_number,
            amount,
            received_date=received_date or clock.now().date(),
            method=method,
            reference=reference,
            invoice_number=invoice_number,
        )
        ended = deliver_payment_messages(user) if cleared else []
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return cleared, ended
