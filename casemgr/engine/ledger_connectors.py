"""Service-task operations that write the ledger, and the payment message that ends cases.

Each operation runs inside the engine step's transaction: if anything later in the step
fails, the ledger write is undone with it. Ledger errors (unknown invoice, amount above the
open balance, a promise dated in the past) stop the step with the ledger's own message.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from casemgr.engine import clock
from casemgr.engine.connectors import operation
from casemgr.engine.step import step_context
from casemgr.ledger import metrics, operations


def _money(value) -> Decimal:
    return operations.parse_amount(value)


def _day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@operation("ledger.credit_check")
def credit_check(p: dict) -> dict:
    """What the credit-hold check and the approvals need: exposure with the order, limits."""
    summary = metrics.customer_summary(str(p["customer_number"]), clock.now().date())
    order = Decimal(str(p.get("order_amount") or "0")).quantize(Decimal("0.01"))
    if not order.is_finite() or order < 0:
        raise ValueError("order_amount must be zero or more")
    exposure_after = summary.exposure + order
    over_pct = (
        ((exposure_after - summary.credit_limit) / summary.credit_limit * 100).quantize(
            Decimal("0.1")
        )
        if summary.credit_limit > 0
        else Decimal("100.0")
    )
    return {
        "credit_limit": summary.credit_limit,
        "open_balance": summary.open_balance,
        "open_orders": summary.open_orders,
        "exposure": summary.exposure,
        "exposure_after": exposure_after,
        "over_limit_pct": over_pct,
        "oldest_past_due_days": summary.oldest_past_due_days,
        "past_due": summary.past_due,
        "on_hold": summary.on_hold,
        "cash_in_advance": summary.cash_in_advance,
        "broken_promises": summary.broken_promises,
    }


@operation("ledger.set_hold")
def set_hold(p: dict) -> bool:
    ctx = step_context()
    on = bool(p.get("on", True))
    cia = p.get("cash_in_advance")
    operations.set_customer_hold(
        str(p["customer_number"]),
        on,
        str(p.get("reason") or ctx.case.title),
        cash_in_advance=None if cia is None else bool(cia),
        author=ctx.actor_name,
    )
    ctx.record(
        "ledger",
        action="hold_set" if on else "hold_released",
        customer=p["customer_number"],
        reason=p.get("reason"),
    )
    return on


@operation("ledger.credit_memo")
def credit_memo(p: dict) -> int:
    ctx = step_context()
    memo = operations.post_credit_memo(
        str(p["customer_number"]),
        str(p["invoice_number"]),
        _money(p["amount"]),
        str(p.get("reason") or ""),
        case_id=ctx.case.id,
        posted_on=clock.now().date(),
    )
    ctx.record(
        "ledger",
        action="credit_memo_posted",
        invoice=p["invoice_number"],
        amount=f"{_money(p['amount']):.2f}",
    )
    return memo.id


@operation("ledger.mark_disputed")
def mark_disputed(p: dict) -> bool:
    """An invoice in dispute while a case works on it. No invoice number (a freight claim
    with no customer deduction behind it): nothing to mark."""
    number = str(p.get("invoice_number") or "").strip()
    disputed = _flag(p["disputed"])
    if not number:
        return False
    operations.set_invoice_disputed(str(p["customer_number"]), number, disputed)
    step_context().record(
        "ledger", action="invoice_disputed" if disputed else "dispute_cleared", invoice=number
    )
    return disputed


def _flag(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ValueError(f"disputed must be true or false, not {value!r}")
    return text == "true"


@operation("ledger.write_off")
def write_off(p: dict) -> str:
    ctx = step_context()
    amount = Decimal(str(p["amount"])).quantize(Decimal("0.01"))
    if amount == 0:
        return "0.00"  # nothing left to write off is a normal outcome, not an error
    amount = _money(amount)
    operations.post_write_off(
        str(p["customer_number"]),
        p.get("invoice_number") or None,
        amount,
        str(p["kind"]),
        case_id=ctx.case.id,
        posted_on=clock.now().date(),
    )
    ctx.record(
        "ledger",
        action="written_off",
        kind=p["kind"],
        amount=f"{amount:.2f}",
        invoice=p.get("invoice_number"),
    )
    return f"{amount:.2f}"


@operation("ledger.record_promise")
def record_promise(p: dict) -> int:
    ctx = step_context()
    promise = operations.record_promise(
        str(p["customer_number"]),
        _money(p["amount"]),
        _day(p["promised_date"]),
        case_id=ctx.case.id,
        today=clock.now().date(),
    )
    ctx.record(
        "ledger",
        action="promise_recorded",
        amount=f"{_money(p['amount']):.2f}",
        promised_date=str(p["promised_date"]),
    )
    return promise.id


@operation("ledger.hold_order")
def hold_order(p: dict) -> str:
    order = operations.hold_order(
        str(p["customer_number"]), str(p["order_number"]), _money(p["amount"])
    )
    step_context().record("ledger", action="order_held", order=order.number)
    return order.number


@operation("ledger.order_status")
def order_status(p: dict) -> str:
    order = operations.set_order_status(str(p["order_number"]), str(p["status"]))
    step_context().record("ledger", action="order_" + order.status, order=order.number)
    return order.status


@operation("ledger.add_note")
def add_note(p: dict) -> int:
    ctx = step_context()
    note = operations.add_note(str(p["customer_number"]), ctx.actor_name, str(p["text"]))
    return note.id
