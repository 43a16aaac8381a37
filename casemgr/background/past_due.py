"""The weekly past-due report per sales rep: the same content as a page and as an e-mail.

A rep's report lists the open invoices of their customers that are past due at the end of
a day, oldest first, with a total per customer. The weekly job mails it to every rep who
has past-due customers and an e-mail address, and records each delivery under its week
(Monday) so a rerun in the same week sends nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from flask import render_template
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from casemgr.background.mail import send_mail, setting
from casemgr.extensions import db
from casemgr.ledger.aging import ZERO, InvoiceFacts, days_past_due, load_invoice_facts, money
from casemgr.models import Customer, Notification, ReportDelivery, User

log = logging.getLogger(__name__)
KIND = "weekly_past_due"
PAGE_PATH = "/reports/past-due"  # the page's route (casemgr.web.reports_pastdue)


@dataclass(frozen=True)
class PastDueLine:
    customer_number: str
    customer_name: str
    invoice: str
    due_date: date
    days_past_due: int
    open_balance: Decimal


@dataclass
class PastDueReport:
    sales_rep: str
    as_of: date
    lines: list[PastDueLine] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return _sum(self.lines)

    def by_customer(self) -> list[tuple[str, str, Decimal, list[PastDueLine]]]:
        """(number, name, total, lines) per customer, the most overdue customer first."""
        groups: dict[str, list[PastDueLine]] = {}
        for line in self.lines:
            groups.setdefault(line.customer_number, []).append(line)
        rows = [
            (number, lines[0].customer_name, _sum(lines), lines) for number, lines in groups.items()
        ]
        return sorted(rows, key=lambda r: (-r[3][0].days_past_due, r[0]))


def _sum(lines: Iterable[PastDueLine]) -> Decimal:
    return money(sum((line.open_balance for line in lines), ZERO))


def past_due_lines(
    invoices: Iterable[InvoiceFacts], names: dict[str, str], as_of: date
) -> list[PastDueLine]:
    """Open invoices past due at the end of ``as_of``, most days past due first."""
    lines = []
    for inv in invoices:
        days = days_past_due(inv.due_date, as_of)
        balance = inv.open_on(as_of)
        if days > 0 and balance > 0:
            lines.append(
                PastDueLine(
                    inv.customer,
                    names.get(inv.customer, inv.customer),
                    inv.number,
                    inv.due_date,
                    days,
                    balance,
                )
            )
    return sorted(lines, key=lambda x: (-x.days_past_due, x.customer_number, x.invoice))


def past_due_report(sales_rep: str, as_of: date) -> PastDueReport:
    facts = load_invoice_facts(as_of, sales_rep=sales_rep)
    names = dict(
        db.session.execute(
            select(Customer.number, Customer.name).where(Customer.sales_rep == sales_rep)
        ).all()
    )
    return PastDueReport(sales_rep, as_of, past_due_lines(facts, names, as_of))


def sales_reps() -> list[str]:
    query = select(Customer.sales_rep).where(Customer.sales_rep.is_not(None)).distinct()
    return sorted(r for r in db.session.execute(query).scalars() if r)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def last_delivery(sales_rep: str) -> ReportDelivery | None:
    query = (
        select(ReportDelivery)
        .where(ReportDelivery.kind == KIND, ReportDelivery.recipient == sales_rep)
        .order_by(ReportDelivery.period_start.desc())
        .limit(1)
    )
    return db.session.execute(query).scalar()


def send_weekly_reports(as_of: date) -> list[ReportDelivery]:
    """Mail each rep's report for the week of ``as_of`` once; returns this run's deliveries."""
    week = week_start(as_of)
    done = []
    for rep in sales_reps():
        if _delivered(rep, week):
            continue
        report = past_due_report(rep, as_of)
        if not report.lines:
            continue
        delivery = _deliver(report, week)
        if delivery is not None:
            done.append(delivery)
    return done


def page_link(sales_rep: str) -> str:
    """The page's address for e-mails: absolute when ``CASEMGR_BASE_URL`` is set."""
    base = setting("BASE_URL").rstrip("/")
    return f"{base}{PAGE_PATH}?{urlencode({'sales_rep': sales_rep})}"


def _delivered(rep: str, week: date) -> bool:
    query = select(ReportDelivery.id).where(
        ReportDelivery.kind == KIND,
        ReportDelivery.period_start == week,
        ReportDelivery.recipient == rep,
    )
    return db.session.execute(query).first() is not None


def _deliver(report: PastDueReport, week: date) -> ReportDelivery | None:
    """Mail first, then record: a crash between the two sends it again (never not at all)."""
    user = db.session.execute(select(User).where(User.username == report.sales_rep)).scalar()
    email = user.email if user is not None and user.active and user.email else None
    page = page_link(report.sales_rep)
    subject = (
        f"Past-due customers, week of {week:%d %b %Y}: {len(report.lines)} invoice(s), "
        f"{report.total:,.2f}"
    )
    if email:
        text = render_template("reports/past_due_email.txt", report=report, page=page)
        html = render_template("reports/past_due_email.html", report=report, page=page)
        where = send_mail([email], subject, text, html)
        log.info("weekly past-due report for %s sent to %s (%s)", report.sales_rep, email, where)
    delivery = ReportDelivery(
        kind=KIND,
        period_start=week,
        recipient=report.sales_rep,
        email=email,
        items=len(report.lines),
        total=report.total,
    )
    db.session.add(delivery)
    if user is not None:
        db.session.add(
            Notification(user_id=user.id, kind="report", message=f"{subject}. See {page}.")
        )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return delivery
