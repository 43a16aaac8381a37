"""Ledger writes the cases make: holds, credit memos, write-offs, promises, payments, notes.

No function here commits: an engine step runs one transaction and a refused step must leave
nothing behind, so the caller owns the commit. Each raises ``ValueError`` (or a subclass) with
a message for a person when the customer or invoice is unknown or an amount is wrong; nothing
is added to the session before every check has passed.
"""

from __future__ import annotations

import secrets
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import select

from casemgr.extensions import db
from casemgr.ledger.aging import MAX_MONEY, ZERO, load_credits, load_invoice_facts, money
from casemgr.ledger.metrics import UnknownCustomer, ar_balance, find_customer
from casemgr.models import (
    AccountNote,
    CreditMemo,
    Customer,
    Invoice,
    Order,
    Payment,
    PromiseToPay,
    WriteOff,
)
from casemgr.models.ledger import ORDER_STATUSES, PAYMENT_METHODS, WRITE_OFF_KINDS

__all__ = [
    "UnknownCustomer",
    "UnknownInvoice",
    "add_note",
    "customer_open_balance",
    "hold_order",
    "invoice_open_balance",
    "parse_amount",
    "post_credit_memo",
    "post_payment",
    "post_write_off",
    "record_promise",
    "review_promises",
    "set_customer_hold",
    "set_order_status",
]


class UnknownInvoice(ValueError, LookupError):
    """No such invoice, or it belongs to another customer."""


def parse_amount(value: Decimal | str | int, what: str = "amount") -> Decimal:
    """A positive amount with at most two decimals. Floats are refused: 0.1 is not 0.10."""
    if isinstance(value, float | bool):
        raise ValueError(f"{what} must be a Decimal or a string, not {type(value).__name__}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{what} {value!r} is not a number") from None
    if not amount.is_finite():
        raise ValueError(f"{what} must be a finite number")
    if abs(amount) > MAX_MONEY:  # checked first: quantizing 1e400 overflows
        raise ValueError(f"{what} is too large")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"{what} {value} has more than two decimals")
    if amount <= 0:
        raise ValueError(f"{what} must be greater than zero")
    return money(amount)


def _invoice(customer: Customer, number: str) -> Invoice:
    invoice = db.session.execute(
        select(Invoice).where(Invoice.number == number)
    ).scalar_one_or_none()
    if invoice is None:
        raise UnknownInvoice(f"unknown invoice {number!r}")
    if invoice.customer_id != customer.id:
        raise UnknownInvoice(f"invoice {number!r} does not belong to customer {customer.number!r}")
    return invoice


def _applied_to(invoice_id: int) -> Decimal:
    """Everything ever applied to one invoice: payments, credit memos, write-offs."""
    total = ZERO
    for model in (Payment, CreditMemo, WriteOff):
        q = select(model.amount).where(model.invoice_id == invoice_id)
        total += sum(db.session.execute(q).scalars(), ZERO)
    return total


def invoice_open_balance(invoice: Invoice) -> Decimal:
    """What is still owed on the invoice, counting every entry, whatever its date."""
    return money(max(invoice.amount - _applied_to(invoice.id), ZERO))


def customer_open_balance(customer: Customer) -> Decimal:
    """Open invoices less unapplied cash, counting every entry, whatever its date."""
    return ar_balance(
        load_invoice_facts(None, customer.id), load_credits(None, customer.id), date.max
    )


def _check_not_over(amount: Decimal, balance: Decimal, what: str) -> None:
    if amount > balance:
        raise ValueError(f"{money(amount)} is more than the open balance of {what} ({balance})")


def set_customer_hold(
    number: str,
    on: bool,
    reason: str,
    *,
    cash_in_advance: bool | None = None,
    author: str = "system",
) -> Customer:
    """Put the account on hold (or release it) and leave a note saying why and who."""
    customer = find_customer(number)
    if on and not reason.strip():
        raise ValueError("a hold needs a reason")
    customer.on_hold = on
    customer.hold_reason = reason.strip() if on else None
    if cash_in_advance is not None:
        customer.cash_in_advance = cash_in_advance
    verb = "Account put on hold" if on else "Hold released"
    text = f"{verb}: {reason.strip()}" if reason.strip() else verb
    if cash_in_advance is not None:
        text += f" (cash in advance: {'yes' if cash_in_advance else 'no'})"
    db.session.add(AccountNote(customer=customer, author=author, text=text))
    return customer


def post_credit_memo(
    customer_number: str,
    invoice_number: str,
    amount: Decimal | str,
    reason: str,
    case_id: int | None = None,
    *,
    posted_on: date | None = None,
) -> CreditMemo:
    """Reduce an invoice's open balance; never below zero."""
    customer = find_customer(customer_number)
    invoice = _invoice(customer, invoice_number)
    value = parse_amount(amount)
    _check_not_over(value, invoice_open_balance(invoice), f"invoice {invoice_number}")
    memo = CreditMemo(
        invoice=invoice,
        amount=value,
        reason=reason,
        case_id=case_id,
        posted_on=posted_on or date.today(),
    )
    db.session.add(memo)
    return memo


def set_invoice_disputed(customer_number: str, invoice_number: str, disputed: bool) -> Invoice:
    """Mark an invoice as in dispute (statements and reports show it) or clear the mark."""
    invoice = _invoice(find_customer(customer_number), invoice_number)
    invoice.disputed = disputed
    return invoice


def _oldest_first_open(customer: Customer) -> list[tuple[Invoice, Decimal]]:
    invoices = db.session.execute(
        select(Invoice)
        .where(Invoice.customer_id == customer.id)
        .order_by(Invoice.due_date, Invoice.id)
    ).scalars()
    pairs = [(inv, invoice_open_balance(inv)) for inv in invoices]
    return [(inv, bal) for inv, bal in pairs if bal > 0]


def post_write_off(
    customer_number: str,
    invoice_number: str | None,
    amount: Decimal | str,
    kind: str,
    case_id: int | None = None,
    *,
    posted_on: date | None = None,
) -> list[WriteOff]:
    """Write off part of one invoice, or (no invoice) of the balance, oldest due first.

    Without an invoice the amount is spread over the open invoices so that each one's
    balance, and so the aging, stays right; one row is written per invoice touched.
    """
    if kind not in WRITE_OFF_KINDS:
        raise ValueError(f"unknown write-off kind {kind!r}; one of {', '.join(WRITE_OFF_KINDS)}")
    customer = find_customer(customer_number)
    value = parse_amount(amount)
    day = posted_on or date.today()
    if invoice_number is not None:
        invoice = _invoice(customer, invoice_number)
        _check_not_over(value, invoice_open_balance(invoice), f"invoice {invoice_number}")
        targets = [(invoice, value)]
    else:
        _check_not_over(value, customer_open_balance(customer), f"customer {customer_number}")
        targets = _allocate(value, _oldest_first_open(customer))
    rows = [
        WriteOff(
            customer=customer,
            invoice=invoice,
            amount=part,
            kind=kind,
            case_id=case_id,
            posted_on=day,
        )
        for invoice, part in targets
    ]
    db.session.add_all(rows)
    return rows


def _allocate(amount: Decimal, open_items: list[tuple[Invoice, Decimal]]) -> list[tuple]:
    """Split ``amount`` over the items in order, each up to its open balance."""
    parts = []
    left = amount
    for invoice, balance in open_items:
        if left <= 0:
            break
        part = min(left, balance)
        parts.append((invoice, part))
        left -= part
    return parts


def record_promise(
    customer_number: str,
    amount: Decimal | str,
    promised_date: date,
    case_id: int | None = None,
    *,
    today: date | None = None,
) -> PromiseToPay:
    """A customer's promise to pay by a day; a day already past is no promise."""
    customer = find_customer(customer_number)
    value = parse_amount(amount)
    if promised_date < (today or date.today()):
        raise ValueError(f"the promised date {promised_date.isoformat()} is in the past")
    _check_not_over(value, customer_open_balance(customer), f"customer {customer_number}")
    promise = PromiseToPay(
        customer=customer,
        amount=value,
        promised_date=promised_date,
        status="open",
        case_id=case_id,
    )
    db.session.add(promise)
    return promise


def post_payment(
    customer_number: str,
    amount: Decimal | str,
    *,
    received_date: date | None = None,
    method: str = "check",
    reference: str | None = None,
    invoice_number: str | None = None,
    case_id: int | None = None,
) -> bool:
    """Post cash to an invoice (or unapplied to the account); True when the customer now owes
    nothing, which is what ends a collection referral."""
    customer = find_customer(customer_number)
    value = parse_amount(amount)
    if method not in PAYMENT_METHODS:
        raise ValueError(f"unknown payment method {method!r}; one of {', '.join(PAYMENT_METHODS)}")
    received = received_date or date.today()
    if received > date.today():
        raise ValueError(f"the received date {received.isoformat()} is in the future")
    invoice = None
    if invoice_number is not None:
        invoice = _invoice(customer, invoice_number)
        _check_not_over(value, invoice_open_balance(invoice), f"invoice {invoice_number}")
    else:
        _check_not_over(value, customer_open_balance(customer), f"customer {customer_number}")
    reference = reference or f"PAY-{received:%Y%m%d}-{secrets.token_hex(4).upper()}"
    if _payment_exists(customer, reference):
        raise ValueError(f"payment {reference!r} is already posted for customer {customer_number}")
    db.session.add(
        Payment(
            customer=customer,
            reference=reference,
            received_date=received,
            amount=value,
            method=method,
            invoice=invoice,
            case_id=case_id,
        )
    )
    db.session.flush()
    return customer_open_balance(customer) <= 0


def _payment_exists(customer: Customer, reference: str) -> bool:
    q = select(Payment.id).where(Payment.customer_id == customer.id, Payment.reference == reference)
    return db.session.execute(q).first() is not None


def review_promises(today: date | None = None) -> list[PromiseToPay]:
    """Settle open promises: kept once the customer has paid the amount since promising,
    broken when the promised day has passed without that. Returns the newly broken ones,
    for which the caller raises a task."""
    today = today or date.today()
    broken = []
    promises = db.session.execute(
        select(PromiseToPay).where(PromiseToPay.status == "open")
    ).scalars()
    for promise in promises:
        paid = _paid_since(promise.customer_id, promise.created_at.date(), promise.promised_date)
        if paid >= promise.amount:
            promise.status = "kept"
        elif promise.promised_date < today:
            promise.status = "broken"
            broken.append(promise)
    return broken


def _paid_since(customer_id: int, start: date, end: date) -> Decimal:
    q = select(Payment.amount).where(
        Payment.customer_id == customer_id,
        Payment.received_date >= start,
        Payment.received_date <= end,
    )
    return sum(db.session.execute(q).scalars(), ZERO)


def set_order_status(order_number: str, status: str) -> Order:
    """Record what became of an order (released, held, shipped, cancelled)."""
    if status not in ORDER_STATUSES:
        raise ValueError(f"unknown order status {status!r}; one of {', '.join(ORDER_STATUSES)}")
    order = db.session.execute(
        select(Order).where(Order.number == order_number)
    ).scalar_one_or_none()
    if order is None:
        raise ValueError(f"unknown order {order_number!r}")
    order.status = status
    return order


def hold_order(
    customer_number: str,
    order_number: str,
    amount: Decimal | str,
    order_date: date | None = None,
) -> Order:
    """An order the ERP put on credit hold: recorded (or updated) with the status ``held``."""
    customer = find_customer(customer_number)
    value = parse_amount(amount)
    order = db.session.execute(
        select(Order).where(Order.number == order_number)
    ).scalar_one_or_none()
    if order is None:
        order = Order(
            customer=customer,
            number=order_number,
            order_date=order_date or date.today(),
            amount=value,
            status="held",
        )
        db.session.add(order)
        return order
    if order.customer_id != customer.id:
        raise ValueError(f"order {order_number!r} belongs to another customer")
    order.amount = value
    order.status = "held"
    return order


def add_note(
    customer_number: str, author: str, text: str, special_handling: bool = False
) -> AccountNote:
    """A note on the account; ``special_handling`` flags what every collector must read."""
    if not text.strip():
        raise ValueError("a note needs text")
    note = AccountNote(
        customer=find_customer(customer_number),
        author=author,
        text=text.strip(),
        special_handling=special_handling,
    )
    db.session.add(note)
    return note
