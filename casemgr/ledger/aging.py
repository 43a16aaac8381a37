"""Aging of open invoices as of a date, rebuilt from payment, credit-memo and write-off history.

The pure part works on plain values (``InvoiceFacts``, ``Credit``) so that it can be checked
by hand and by property tests; ``load_invoice_facts``, ``load_credits`` and ``aging_report``
are the thin wrappers that read those values from the database.

An invoice is open at the end of a day when it was issued on or before that day and what was
applied to it by then (payments received, credit memos and write-offs posted on or before the
day) is less than its amount. A payment received after the day therefore leaves it open on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select

from casemgr.extensions import db
from casemgr.models import CreditMemo, Customer, Invoice, Payment, WriteOff

BUCKETS: tuple[str, ...] = ("current", "1-30", "31-60", "61-90", "91-120", "120+")
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
MAX_MONEY = Decimal("999999999999.99")  # what Numeric(14, 2) holds


def money(value: Decimal | int) -> Decimal:
    """Round to the cent, half up, as accountants do (never banker's rounding)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Reduction:
    """Something that lowered an invoice's balance on a day: a payment, credit memo or
    write-off (``kind``: ``payment``, ``credit_memo``, ``write_off``)."""

    on: date
    amount: Decimal
    kind: str = "payment"


@dataclass(frozen=True)
class InvoiceFacts:
    """What the ledger knows of one invoice and everything applied to it."""

    customer: str
    number: str
    invoice_date: date
    due_date: date
    amount: Decimal
    reductions: tuple[Reduction, ...] = ()

    def open_on(self, as_of: date) -> Decimal:
        """The balance at the end of ``as_of``; zero before the invoice was issued.

        Never negative: imports and ledger operations refuse to over-apply an invoice, and a
        report must not let one bad row turn into a credit on another customer's total.
        """
        if self.invoice_date > as_of:
            return ZERO
        applied = sum((r.amount for r in self.reductions if r.on <= as_of), ZERO)
        return money(max(self.amount - applied, ZERO))

    def closed_on(self, as_of: date | None = None) -> date | None:
        """The day the balance reached zero (counting reductions up to ``as_of``), or None."""
        if self.amount <= 0:
            return self.invoice_date
        applied = ZERO
        for r in sorted(self.reductions, key=lambda r: r.on):
            if as_of is not None and r.on > as_of:
                break
            applied += r.amount
            if applied >= self.amount:
                return r.on
        return None

    def was_paid(self, as_of: date | None = None) -> bool:
        """Closed with at least one payment: a pure credit or write-off is not "paid"."""
        return self.closed_on(as_of) is not None and any(
            r.kind == "payment" and (as_of is None or r.on <= as_of) for r in self.reductions
        )


@dataclass(frozen=True)
class Credit:
    """Money on a customer's account not applied to an invoice (unapplied cash)."""

    customer: str
    on: date
    amount: Decimal


def days_past_due(due_date: date, as_of: date) -> int:
    """Negative or zero while the invoice is not yet due."""
    return (as_of - due_date).days


def bucket_for(days: int) -> str:
    """The aging bucket of an invoice that is ``days`` past due (0 or less is current)."""
    if days <= 0:
        return "current"
    if days <= 30:
        return "1-30"
    if days <= 60:
        return "31-60"
    if days <= 90:
        return "61-90"
    if days <= 120:
        return "91-120"
    return "120+"


def empty_buckets() -> dict[str, Decimal]:
    return {name: ZERO for name in BUCKETS}


@dataclass
class Aging:
    """Open invoice balances by bucket, for the ledger and per customer number."""

    as_of: date
    totals: dict[str, Decimal] = field(default_factory=empty_buckets)
    customers: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    unapplied: dict[str, Decimal] = field(default_factory=dict)

    @property
    def total(self) -> Decimal:
        return sum(self.totals.values(), ZERO)

    @property
    def unapplied_total(self) -> Decimal:
        return sum(self.unapplied.values(), ZERO)

    def customer_total(self, number: str) -> Decimal:
        return sum(self.customers.get(number, {}).values(), ZERO)


def age_invoices(
    invoices: Iterable[InvoiceFacts], as_of: date, credits: Iterable[Credit] = ()
) -> Aging:
    """Bucket every invoice open at the end of ``as_of`` by its days past due on that day."""
    aging = Aging(as_of=as_of)
    for inv in invoices:
        balance = inv.open_on(as_of)
        if balance <= 0:
            continue
        bucket = bucket_for(days_past_due(inv.due_date, as_of))
        row = aging.customers.setdefault(inv.customer, empty_buckets())
        row[bucket] += balance
        aging.totals[bucket] += balance
    for credit in credits:
        if credit.on <= as_of:
            aging.unapplied[credit.customer] = (
                aging.unapplied.get(credit.customer, ZERO) + credit.amount
            )
    return aging


def oldest_days_past_due(invoices: Iterable[InvoiceFacts], as_of: date) -> int:
    """Days past due of the oldest open past-due invoice; 0 when nothing is past due."""
    days = [days_past_due(inv.due_date, as_of) for inv in invoices if inv.open_on(as_of) > 0]
    return max([d for d in days if d > 0], default=0)


# --- Loading from the database -------------------------------------------------------------


def load_invoice_facts(
    as_of: date | None = None, customer_id: int | None = None, sales_rep: str | None = None
) -> list[InvoiceFacts]:
    """Invoices issued by ``as_of`` (all when None) with what was applied to them by then.

    Four flat queries, no per-invoice round trips: fast enough for a ledger of 100k invoices.
    """
    inv_q = select(
        Invoice.id,
        Customer.number,
        Invoice.number,
        Invoice.invoice_date,
        Invoice.due_date,
        Invoice.amount,
    ).join(Customer, Invoice.customer_id == Customer.id)
    if as_of is not None:
        inv_q = inv_q.where(Invoice.invoice_date <= as_of)
    if customer_id is not None:
        inv_q = inv_q.where(Invoice.customer_id == customer_id)
    if sales_rep is not None:
        inv_q = inv_q.where(Customer.sales_rep == sales_rep)
    rows = db.session.execute(inv_q.order_by(Invoice.invoice_date, Invoice.id)).all()

    reductions: dict[int, list[Reduction]] = {}
    for invoice_id, on, amount, kind in _reduction_rows(as_of, customer_id, sales_rep):
        reductions.setdefault(invoice_id, []).append(Reduction(on, amount, kind))
    return [
        InvoiceFacts(
            customer=cust,
            number=number,
            invoice_date=inv_date,
            due_date=due,
            amount=amount,
            reductions=tuple(reductions.get(inv_id, ())),
        )
        for inv_id, cust, number, inv_date, due, amount in rows
    ]


def _reduction_rows(
    as_of: date | None, customer_id: int | None, sales_rep: str | None = None
) -> list[tuple]:
    """(invoice id, date, amount, kind) of every payment, credit memo and write-off applied
    to an invoice issued by ``as_of``, dated on or before it."""
    sources = (
        (Payment.invoice_id, Payment.received_date, Payment.amount, "payment"),
        (CreditMemo.invoice_id, CreditMemo.posted_on, CreditMemo.amount, "credit_memo"),
        (WriteOff.invoice_id, WriteOff.posted_on, WriteOff.amount, "write_off"),
    )
    out: list[tuple] = []
    for inv_col, date_col, amount_col, kind in sources:
        q = select(inv_col, date_col, amount_col).join(Invoice, inv_col == Invoice.id)
        if as_of is not None:
            q = q.where(Invoice.invoice_date <= as_of, date_col <= as_of)
        if customer_id is not None:
            q = q.where(Invoice.customer_id == customer_id)
        if sales_rep is not None:
            q = q.join(Customer, Invoice.customer_id == Customer.id).where(
                Customer.sales_rep == sales_rep
            )
        out.extend((i, d, a, kind) for i, d, a in db.session.execute(q))
    return out


def load_credits(
    as_of: date | None = None, customer_id: int | None = None, sales_rep: str | None = None
) -> list[Credit]:
    """Unapplied cash (and write-offs naming no invoice) received by ``as_of``."""
    # A write-off without an invoice lowers what is owed exactly as unapplied cash does.
    sources = (
        (Payment.customer_id, Payment.invoice_id, Payment.received_date, Payment.amount),
        (WriteOff.customer_id, WriteOff.invoice_id, WriteOff.posted_on, WriteOff.amount),
    )
    credits: list[Credit] = []
    for cust_col, inv_col, date_col, amount_col in sources:
        q = (
            select(Customer.number, date_col, amount_col)
            .join(Customer, cust_col == Customer.id)
            .where(inv_col.is_(None))
        )
        if as_of is not None:
            q = q.where(date_col <= as_of)
        if customer_id is not None:
            q = q.where(cust_col == customer_id)
        if sales_rep is not None:
            q = q.where(Customer.sales_rep == sales_rep)
        credits.extend(Credit(number, on, amount) for number, on, amount in db.session.execute(q))
    return credits


def aging_report(as_of: date, sales_rep: str | None = None) -> Aging:
    """The ledger's aging at the end of ``as_of``, or that of one sales rep's customers."""
    return age_invoices(
        load_invoice_facts(as_of, sales_rep=sales_rep),
        as_of,
        load_credits(as_of, sales_rep=sales_rep),
    )
