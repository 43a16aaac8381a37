"""Letters and statements a person sends a customer: what goes in each, and HTML → PDF.

The builders are pure: they take case data or ledger facts and return a frozen value that a
template renders, so the figures can be checked without a browser or a database. The
``load_*`` wrappers read those facts from the ledger, and ``html_to_pdf`` turns the very HTML
a person sees on screen into a PDF (xhtml2pdf: pure Python, no browser or system library).

No Flask in here: the web layer renders the templates, with the company name from config.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import select

from casemgr.extensions import db
from casemgr.ledger.aging import (
    BUCKETS,
    ZERO,
    Credit,
    InvoiceFacts,
    age_invoices,
    bucket_for,
    days_past_due,
    empty_buckets,
    load_credits,
    load_invoice_facts,
    money,
)
from casemgr.ledger.metrics import ar_balance, find_customer
from casemgr.models import CreditMemo, Customer, Invoice

# Kind key -> the title a person reads (on the case page and atop the letter).
LETTER_TITLES: dict[str, str] = {
    "approval": "Credit approval letter",
    "decline": "Credit decline letter",
    "dispute_outcome": "Dispute outcome letter",
    "final_demand": "Final demand letter",
    "statement": "Statement of account",
}
# A referral's final demand gives the customer the 10 days the case waits for payment.
FINAL_DEMAND_DAYS = 10
APPROVED_OUTCOMES = ("approved", "cash_in_advance")


class LetterNotAvailable(LookupError):
    """The case is not (or not yet) at a point where this letter says anything true."""


# --- formatting -----------------------------------------------------------------------------


def format_money(value: Decimal | str | int | None) -> str:
    """Thousands separators and two decimals, as on a cheque: 12,500.00 (empty when unknown)."""
    if value is None or value == "":
        return ""
    try:
        return f"{money(Decimal(str(value))):,.2f}"
    except (InvalidOperation, ValueError):
        return str(value)


def long_date(day: date) -> str:
    """The date as a letter carries it: March 5, 2026 (no locale: the server's is arbitrary)."""
    return f"{day:%B} {day.day}, {day.year}"


def address_lines(address: str | None) -> list[str]:
    """An address typed on several lines (or with commas left as they are) as lines."""
    return [line.strip() for line in (address or "").splitlines() if line.strip()]


def _decimal(value: object) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool | float):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return money(amount) if amount.is_finite() else None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


# --- open items: the lines of a statement, a final demand and the aging drill-down ---------


@dataclass(frozen=True)
class OpenItem:
    """One invoice still (partly) open at the end of ``as_of``."""

    number: str
    invoice_date: date
    due_date: date
    amount: Decimal
    open_balance: Decimal
    days_past_due: int  # zero or negative while not yet due
    bucket: str
    disputed: bool = False

    @property
    def past_due(self) -> bool:
        return self.days_past_due > 0


def open_items(
    invoices: Iterable[InvoiceFacts], as_of: date, disputed: Iterable[str] = ()
) -> list[OpenItem]:
    """The invoices open at the end of ``as_of``, oldest due first: the same rule as the aging,
    so a statement's buckets and the aging report never disagree."""
    flagged = set(disputed)
    items = []
    for inv in invoices:
        balance = inv.open_on(as_of)
        if balance <= 0:
            continue
        days = days_past_due(inv.due_date, as_of)
        items.append(
            OpenItem(
                number=inv.number,
                invoice_date=inv.invoice_date,
                due_date=inv.due_date,
                amount=money(inv.amount),
                open_balance=balance,
                days_past_due=days,
                bucket=bucket_for(days),
                disputed=inv.number in flagged,
            )
        )
    return sorted(items, key=lambda i: (i.due_date, i.number))


def in_bucket(items: Iterable[OpenItem], bucket: str) -> list[OpenItem]:
    """The aging drill-down: exactly the items whose balance the bucket sums."""
    if bucket not in BUCKETS:
        raise ValueError(f"unknown aging bucket {bucket!r}; one of {', '.join(BUCKETS)}")
    return [item for item in items if item.bucket == bucket]


def total(items: Iterable[OpenItem]) -> Decimal:
    return money(sum((i.open_balance for i in items), ZERO))


# --- the letters ------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    name: str
    number: str | None
    address: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CreditDecisionLetter:
    """The answer to a credit application: approved (possibly cash in advance) or declined."""

    kind: str  # "approval" or "decline"
    recipient: Recipient
    outcome: str
    approved_limit: Decimal | None
    terms_days: int | None
    cash_in_advance: bool
    comment: str


def credit_decision_kind(outcome: str | None) -> str | None:
    """Which letter answers the application: none while it is undecided or withdrawn."""
    if outcome in APPROVED_OUTCOMES:
        return "approval"
    if outcome == "declined":
        return "decline"
    return None


def credit_decision(data: Mapping[str, object], outcome: str | None = None) -> CreditDecisionLetter:
    """The decision letter from the application's case data (the case's outcome wins over the
    data's ``outcome``: it is what the case ended with)."""
    outcome = outcome or str(data.get("outcome") or "")
    kind = credit_decision_kind(outcome)
    if kind is None:
        raise LetterNotAvailable("the application has no decision to write to the customer yet")
    cash = outcome == "cash_in_advance" or data.get("cash_in_advance") is True
    return CreditDecisionLetter(
        kind=kind,
        recipient=Recipient(
            name=str(data.get("legal_name") or data.get("customer_name") or "Customer"),
            number=str(data["customer_number"]) if data.get("customer_number") else None,
            address=address_lines(str(data.get("address") or "")),
        ),
        outcome=outcome,
        approved_limit=_decimal(data.get("approved_limit")) if kind == "approval" else None,
        terms_days=_int(data.get("approved_terms_days")) if kind == "approval" else None,
        cash_in_advance=cash and kind == "approval",
        comment=str(data.get("comment") or "").strip(),
    )


@dataclass(frozen=True)
class Statement:
    """Open items and aging of one account at the end of a day."""

    recipient: Recipient
    as_of: date
    currency: str
    terms_days: int
    items: list[OpenItem]
    aging: dict[str, Decimal]
    unapplied: Decimal
    balance: Decimal

    @property
    def invoiced_open(self) -> Decimal:
        return total(self.items)

    @property
    def past_due(self) -> Decimal:
        return money(sum((v for k, v in self.aging.items() if k != "current"), ZERO))


def statement(
    customer: Customer,
    invoices: list[InvoiceFacts],
    credits: list[Credit],
    as_of: date,
    disputed: Iterable[str] = (),
) -> Statement:
    """Build a statement from loaded facts; balance = open invoices less unapplied cash."""
    aging = age_invoices(invoices, as_of, credits)
    return Statement(
        recipient=Recipient(customer.name, customer.number, address_lines(customer.address)),
        as_of=as_of,
        currency=customer.currency,
        terms_days=customer.terms_days,
        items=open_items(invoices, as_of, disputed),
        aging=aging.customers.get(customer.number, empty_buckets()),
        unapplied=money(aging.unapplied.get(customer.number, ZERO)),
        balance=ar_balance(invoices, credits, as_of),
    )


@dataclass(frozen=True)
class FinalDemand:
    """The last letter before an account goes to a collection agency."""

    statement: Statement
    pay_by: date

    @property
    def past_due_items(self) -> list[OpenItem]:
        return [i for i in self.statement.items if i.past_due]

    @property
    def oldest_days_past_due(self) -> int:
        return max((i.days_past_due for i in self.statement.items), default=0)


def final_demand(account: Statement, letter_date: date) -> FinalDemand:
    """The demand, paid within ``FINAL_DEMAND_DAYS``; none for an account with nothing past
    due (a demand letter that threatens a paying customer is worse than none)."""
    if account.past_due <= 0:
        raise LetterNotAvailable(
            f"nothing on account {account.recipient.number} is past due: no final demand applies"
        )
    return FinalDemand(account, letter_date + timedelta(days=FINAL_DEMAND_DAYS))


@dataclass(frozen=True)
class MemoLine:
    invoice_number: str
    amount: Decimal
    posted_on: date
    reason: str


@dataclass(frozen=True)
class DisputeOutcome:
    """What became of a customer's dispute, from the credit memos the case actually posted.

    The ledger, not the case's wording, decides "credited" or "denied": a letter must never
    promise a credit that was not posted.
    """

    recipient: Recipient
    invoice_numbers: list[str]
    disputed_amount: Decimal | None
    reason: str
    outcome: str
    memos: list[MemoLine]
    open_after: Decimal | None
    denial_reason: str = ""
    rebill: bool = False
    carrier: str = ""

    @property
    def credited(self) -> Decimal:
        return money(sum((m.amount for m in self.memos), ZERO))

    @property
    def resolution(self) -> str:
        """``full_credit``, ``partial_credit``, ``freight_claim`` (the carrier is claimed
        against: the customer's deduction stands) or ``denied``."""
        if self.memos:
            if self.disputed_amount is not None and self.credited < self.disputed_amount:
                return "partial_credit"
            return "full_credit"
        if self.outcome == "freight_claim_opened":
            return "freight_claim"
        return "denied"


def dispute_invoice_numbers(data: Mapping[str, object]) -> list[str]:
    """The invoice(s) a dispute names: ``invoice_number`` or a list / comma-separated
    ``invoice_numbers``."""
    raw = data.get("invoice_numbers") or data.get("invoice_number") or []
    values = raw if isinstance(raw, list) else str(raw).replace(";", ",").split(",")
    return [str(v).strip() for v in values if str(v).strip()]


def dispute_outcome(
    data: Mapping[str, object],
    outcome: str | None,
    customer: Customer,
    memos: list[MemoLine],
    open_after: Decimal | None,
) -> DisputeOutcome:
    """The dispute letter from the case data of dispute_resolution.bpmn (``reason_code``,
    ``denial_reason``, ``collection_action``, ``carrier``) and the memos posted for it."""
    return DisputeOutcome(
        recipient=Recipient(customer.name, customer.number, address_lines(customer.address)),
        invoice_numbers=dispute_invoice_numbers(data),
        disputed_amount=_decimal(data.get("disputed_amount")),
        reason=str(data.get("reason_code") or data.get("reason") or "").replace("_", " "),
        outcome=str(outcome or data.get("outcome") or ""),
        memos=memos,
        open_after=open_after,
        denial_reason=str(data.get("denial_reason") or "").strip(),
        rebill=data.get("collection_action") == "rebill",
        carrier=str(data.get("carrier") or "").strip(),
    )


def letters_for_case(
    case_type: str, status: str, outcome: str | None, has_customer: bool
) -> list[str]:
    """The letters that say something true about this case now, in the order people send
    them. A decision letter needs the decision; a dispute letter the closed dispute."""
    if case_type == "credit_application":
        kind = credit_decision_kind(outcome)
        return [kind] if kind else []
    if not has_customer:
        return []
    if case_type == "collection_referral":  # the demand belongs to the referral's course
        return (["final_demand"] if status == "open" else []) + ["statement"]
    if case_type == "dispute_resolution":
        return (["dispute_outcome"] if status == "completed" else []) + ["statement"]
    return []


# --- loading from the ledger ------------------------------------------------------------


def _disputed_numbers(customer_id: int) -> set[str]:
    q = select(Invoice.number).where(Invoice.customer_id == customer_id, Invoice.disputed)
    return set(db.session.execute(q).scalars())


def load_open_items(customer: Customer, as_of: date) -> list[OpenItem]:
    """A customer's open invoices at the end of ``as_of`` with their dispute flags."""
    facts = load_invoice_facts(as_of, customer.id)
    return open_items(facts, as_of, _disputed_numbers(customer.id))


def load_statement(number: str, as_of: date) -> Statement:
    """UnknownCustomer if there is no such customer."""
    customer = find_customer(number)
    return statement(
        customer,
        load_invoice_facts(as_of, customer.id),
        load_credits(as_of, customer.id),
        as_of,
        _disputed_numbers(customer.id),
    )


def load_final_demand(number: str, as_of: date) -> FinalDemand:
    return final_demand(load_statement(number, as_of), as_of)


def load_dispute_outcome(
    case_id: int, data: Mapping[str, object], outcome: str | None, customer_number: str
) -> DisputeOutcome:
    """The dispute letter from the case's data and the credit memos posted for the case."""
    customer = find_customer(customer_number)
    rows = db.session.execute(
        select(CreditMemo, Invoice.number)
        .join(Invoice, CreditMemo.invoice_id == Invoice.id)
        .where(CreditMemo.case_id == case_id)
        .order_by(CreditMemo.posted_on, CreditMemo.id)
    ).all()
    memos = [MemoLine(number, memo.amount, memo.posted_on, memo.reason) for memo, number in rows]
    numbers = dispute_invoice_numbers(data) or sorted({m.invoice_number for m in memos})
    open_after = None
    if numbers:
        facts = [f for f in load_invoice_facts(None, customer.id) if f.number in set(numbers)]
        open_after = money(sum((f.open_on(date.max) for f in facts), ZERO)) if facts else None
    data = {**data, "invoice_numbers": numbers}
    return dispute_outcome(data, outcome, customer, memos, open_after)


# --- PDF --------------------------------------------------------------------------------


PDF_RENDER_SECONDS = 60  # a statement of thousands of lines, not a stuck worker


class PdfError(RuntimeError):
    """xhtml2pdf could not lay the letter out."""


def _offline_policy() -> dict:
    """Letters carry their stylesheet inline and need nothing else: the renderer may fetch
    no URL and read no file. Every value in a letter is escaped by the templates, so no
    markup from the ledger reaches the renderer; this is the second lock. (The policy API
    arrived in later xhtml2pdf releases; without it there is only the first lock.)"""
    try:
        from xhtml2pdf.config.resources import ResourceAccessPolicy
    except ImportError:  # pragma: no cover - older xhtml2pdf
        return {}
    policy = ResourceAccessPolicy(
        allow_remote=False, base_dir=None, max_render_seconds=PDF_RENDER_SECONDS
    )
    return {"resource_policy": policy}


def html_to_pdf(html: str) -> bytes:
    """The letter's HTML (with its print stylesheet inline) as a PDF document."""
    from xhtml2pdf import pisa  # imported late: loading reportlab costs ~0.3 s at startup

    out = io.BytesIO()
    result = pisa.CreatePDF(html, dest=out, encoding="utf-8", **_offline_policy())
    if result.err:
        raise PdfError(f"the PDF could not be produced ({result.err} layout errors)")
    return out.getvalue()
