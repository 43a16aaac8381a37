"""The AR ledger the cases work on.

Money columns are ``Money`` (Numeric(14, 2)) and come back as ``Decimal``; business dates are
``Date`` (an invoice is due on a day, not at an instant); system timestamps are UTC.

``case_id`` columns are plain integers, not foreign keys: ledger entries are accounting
records that must outlive any case, and other systems (the ERP import) write the ledger too.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from casemgr.extensions import db
from casemgr.models.types import Money, UTCDateTime, utcnow

PAYMENT_METHODS: tuple[str, ...] = ("lockbox", "credit_card", "ach", "wire", "check")
ORDER_STATUSES: tuple[str, ...] = ("open", "released", "held", "shipped", "cancelled")
# Orders not yet shipped or cancelled still commit credit: they count in the exposure.
UNSHIPPED_ORDER_STATUSES: tuple[str, ...] = ("open", "released", "held")
WRITE_OFF_KINDS: tuple[str, ...] = ("small_balance", "bad_debt", "freight_remainder")
PROMISE_STATUSES: tuple[str, ...] = ("open", "kept", "broken")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Customer(db.Model):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(200))
    dba: Mapped[str | None] = mapped_column(String(200))
    tax_id: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(Text)
    credit_limit: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    terms_days: Mapped[int] = mapped_column(default=30)
    on_hold: Mapped[bool] = mapped_column(default=False)
    hold_reason: Mapped[str | None] = mapped_column(Text)
    cash_in_advance: Mapped[bool] = mapped_column(default=False)
    sales_rep: Mapped[str | None] = mapped_column(String(80), index=True)
    country: Mapped[str | None] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    tax_exempt_number: Mapped[str | None] = mapped_column(String(60))
    tax_exempt_expiry: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Invoice(db.Model):
    __tablename__ = "invoices"
    __table_args__ = (
        # Aging and DSO select invoices issued on or before a date, for all or one customer.
        Index("ix_invoices_customer_date", "customer_id", "invoice_date"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    number: Mapped[str] = mapped_column(String(40), unique=True)
    invoice_date: Mapped[date] = mapped_column(Date, index=True)
    due_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    disputed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship()


class Payment(db.Model):
    """Cash received. Without an invoice it is unapplied cash, a credit on the account."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("customer_id", "reference", name="uq_payments_customer_reference"),
        # Open balances at a date sum the payments applied to each invoice up to that date.
        Index("ix_payments_invoice_received", "invoice_id", "received_date"),
        Index("ix_payments_customer_received", "customer_id", "received_date"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(_one_of("method", PAYMENT_METHODS), name="method"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    reference: Mapped[str] = mapped_column(String(60))
    received_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    method: Mapped[str] = mapped_column(String(20))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    case_id: Mapped[int | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship()
    invoice: Mapped[Invoice | None] = relationship()


class CreditMemo(db.Model):
    """A reduction of one invoice, e.g. a valid dispute. ``posted_on`` is its accounting date."""

    __tablename__ = "credit_memos"
    __table_args__ = (
        Index("ix_credit_memos_invoice_posted", "invoice_id", "posted_on"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
    reason: Mapped[str] = mapped_column(Text, default="")
    case_id: Mapped[int | None] = mapped_column(index=True)
    posted_on: Mapped[date] = mapped_column(Date)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    invoice: Mapped[Invoice] = relationship()


class WriteOff(db.Model):
    """Balance given up. The ledger's own writes always name an invoice; rows without one
    (from other writers) reduce the customer's balance as a whole."""

    __tablename__ = "write_offs"
    __table_args__ = (
        Index("ix_write_offs_invoice_posted", "invoice_id", "posted_on"),
        Index("ix_write_offs_customer_posted", "customer_id", "posted_on"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(_one_of("kind", WRITE_OFF_KINDS), name="kind"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
    kind: Mapped[str] = mapped_column(String(30))
    case_id: Mapped[int | None] = mapped_column(index=True)
    posted_on: Mapped[date] = mapped_column(Date)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship()
    invoice: Mapped[Invoice | None] = relationship()


class Order(db.Model):
    """A sales order not yet invoiced; unshipped ones count in the credit exposure."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_customer_status", "customer_id", "status"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint(_one_of("status", ORDER_STATUSES), name="status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    number: Mapped[str] = mapped_column(String(40), unique=True)
    order_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship()


class PromiseToPay(db.Model):
    __tablename__ = "promises_to_pay"
    __table_args__ = (
        Index("ix_promises_status_date", "status", "promised_date"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(_one_of("status", PROMISE_STATUSES), name="status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    promised_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="open")
    case_id: Mapped[int | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship()


class AccountNote(db.Model):
    __tablename__ = "account_notes"
    __table_args__ = (Index("ix_account_notes_customer_created", "customer_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    author: Mapped[str] = mapped_column(String(80))
    text: Mapped[str] = mapped_column(Text)
    special_handling: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship()
