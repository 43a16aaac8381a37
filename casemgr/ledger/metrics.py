"""The figures everyone in AR expects: AR balance, DSO, exposure, available credit and
average days late. Pure functions first, then the wrappers that read the database."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from casemgr.extensions import db
from casemgr.ledger.aging import (
    ZERO,
    Credit,
    InvoiceFacts,
    age_invoices,
    empty_buckets,
    load_credits,
    load_invoice_facts,
    money,
    oldest_days_past_due,
)
from casemgr.models import Customer, Order, PromiseToPay
from casemgr.models.ledger import UNSHIPPED_ORDER_STATUSES


class UnknownCustomer(ValueError, LookupError):
    """No customer with that number in the ledger (a ValueError, as the case scripts expect)."""


def ar_balance(invoices: Iterable[InvoiceFacts], credits: Iterable[Credit], as_of: date) -> Decimal:
    """What customers owe at the end of ``as_of``: open invoices less unapplied cash."""
    owed = sum((inv.open_on(as_of) for inv in invoices), ZERO)
    unapplied = sum((c.amount for c in credits if c.on <= as_of), ZERO)
    return money(owed - unapplied)


def credit_sales(invoices: Iterable[InvoiceFacts], start: date, end: date) -> Decimal:
    """Invoiced in ``start``..``end``, both days included."""
    return money(sum((inv.amount for inv in invoices if start <= inv.invoice_date <= end), ZERO))


def span_days(start: date, end: date) -> int:
    """Days in ``start``..``end`` counting both ends: 2013-01-01..2013-01-31 is 31 days."""
    return (end - start).days + 1


def dso(balance: Decimal, sales: Decimal, days: int) -> Decimal | None:
    """Days sales outstanding = balance / sales x days, to the cent; None without sales."""
    if sales <= 0:
        return None
    return money(balance / sales * days)


@dataclass(frozen=True)
class DsoResult:
    start: date
    end: date
    dso: Decimal | None
    ar_balance: Decimal
    credit_sales: Decimal
    days: int


def compute_dso(
    invoices: Iterable[InvoiceFacts], credits: Iterable[Credit], start: date, end: date
) -> DsoResult:
    """DSO over ``start``..``end`` (inclusive day count) with the AR open at the end of ``end``."""
    invoices = list(invoices)
    balance = ar_balance(invoices, credits, end)
    sales = credit_sales(invoices, start, end)
    days = span_days(start, end)
    return DsoResult(start, end, dso(balance, sales, days), balance, sales, days)


def exposure(open_ar: Decimal, open_orders: Decimal) -> Decimal:
    """Credit at risk: what is owed plus what is ordered and not yet shipped."""
    return money(open_ar + open_orders)


def available_credit(credit_limit: Decimal, current_exposure: Decimal) -> Decimal:
    """Negative when the customer is over its limit: the hold-release check needs the sign."""
    return money(credit_limit - current_exposure)


def days_late(inv: InvoiceFacts, as_of: date | None = None) -> int | None:
    """Days the invoice was paid after its due date (0 if on time); None if not paid."""
    if not inv.was_paid(as_of):
        return None
    paid_on = inv.closed_on(as_of)
    return max(0, (paid_on - inv.due_date).days)


def average_days_late(
    invoices: Iterable[InvoiceFacts], as_of: date | None = None
) -> Decimal | None:
    """Mean days late over the paid invoices, to two decimals; None when none is paid.

    The paid date is the day the invoice's balance reached zero, so a credit memo that
    closes a short-paid invoice later moves the paid date to the memo's date.
    """
    lates = [d for d in (days_late(inv, as_of) for inv in invoices) if d is not None]
    if not lates:
        return None
    return money(Decimal(sum(lates)) / len(lates))


@dataclass(frozen=True)
class CustomerSummary:
    """One customer's standing, as the customer page, the API and the cases read it."""

    number: str
    name: str
    credit_limit: Decimal
    terms_days: int
    on_hold: bool
    cash_in_advance: bool
    sales_rep: str | None
    currency: str
    as_of: date
    open_balance: Decimal
    open_orders: Decimal
    exposure: Decimal
    available_credit: Decimal
    average_days_late: Decimal | None
    past_due: Decimal
    oldest_past_due_days: int
    broken_promises: int
    aging: dict[str, Decimal] = field(default_factory=empty_buckets)


def summarize(
    customer: Customer,
    invoices: list[InvoiceFacts],
    credits: list[Credit],
    open_orders: Decimal,
    as_of: date,
    broken_promises: int = 0,
) -> CustomerSummary:
    """Put one customer's figures together from already loaded facts."""
    aging = age_invoices(invoices, as_of, credits)
    buckets = aging.customers.get(customer.number, empty_buckets())
    balance = ar_balance(invoices, credits, as_of)
    current_exposure = exposure(balance, open_orders)
    return CustomerSummary(
        number=customer.number,
        name=customer.name,
        credit_limit=money(customer.credit_limit),
        terms_days=customer.terms_days,
        on_hold=customer.on_hold,
        cash_in_advance=customer.cash_in_advance,
        sales_rep=customer.sales_rep,
        currency=customer.currency,
        as_of=as_of,
        open_balance=balance,
        open_orders=money(open_orders),
        exposure=current_exposure,
        available_credit=available_credit(customer.credit_limit, current_exposure),
        average_days_late=average_days_late(invoices, as_of),
        past_due=money(sum((v for k, v in buckets.items() if k != "current"), ZERO)),
        oldest_past_due_days=oldest_days_past_due(invoices, as_of),
        broken_promises=broken_promises,
        aging=buckets,
    )


# --- Loading from the database -------------------------------------------------------------


def find_customer(number: str) -> Customer:
    customer = db.session.execute(
        select(Customer).where(Customer.number == number)
    ).scalar_one_or_none()
    if customer is None:
        raise UnknownCustomer(f"unknown customer {number!r}")
    return customer


def open_orders_total(customer_id: int, as_of: date | None = None) -> Decimal:
    """Unshipped orders (open, released, held) placed by ``as_of``."""
    q = select(Order.amount).where(
        Order.customer_id == customer_id, Order.status.in_(UNSHIPPED_ORDER_STATUSES)
    )
    if as_of is not None:
        q = q.where(Order.order_date <= as_of)
    return money(sum(db.session.execute(q).scalars(), ZERO))


def broken_promises_count(customer_id: int) -> int:
    q = select(func.count(PromiseToPay.id)).where(
        PromiseToPay.customer_id == customer_id, PromiseToPay.status == "broken"
    )
    return db.session.execute(q).scalar_one()


def customer_summary(number: str, as_of: date | None = None) -> CustomerSummary:
    """A customer's balances at the end of ``as_of`` (default today); UnknownCustomer if none."""
    as_of = as_of or date.today()
    customer = find_customer(number)
    return summarize(
        customer,
        load_invoice_facts(as_of, customer.id),
        load_credits(as_of, customer.id),
        open_orders_total(customer.id, as_of),
        as_of,
        broken_promises_count(customer.id),
    )


def dso_report(start: date, end: date) -> DsoResult:
    """The ledger's DSO over ``start``..``end``, both days included."""
    if end < start:
        raise ValueError("end must be on or after start")
    return compute_dso(load_invoice_facts(end), load_credits(end), start, end)
