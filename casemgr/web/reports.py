"""Ledger reports: aging with a drill-down to the invoices behind each amount, CSV exports of
both, and DSO with its trend over the last six month-ends.

Who sees what follows the ledger API: ``REPORT_ROLES`` see the whole ledger (the process
owner too: reports, but no customer page), a sales rep sees the aging of their own customers
only. DSO is a figure for the whole ledger, as on the API. A bad date or bucket in the query
is an inline error on the page (422), never a 500.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from flask import Blueprint, Response, abort, render_template, request

from casemgr.extensions import db
from casemgr.ledger.aging import BUCKETS, Aging, aging_report, load_credits, load_invoice_facts
from casemgr.ledger.metrics import DsoResult, compute_dso
from casemgr.letters import OpenItem, in_bucket, load_open_items, total
from casemgr.models import Customer, User
from casemgr.web.helpers import require_login, roles_required, user

bp = Blueprint("reports", __name__)
require_login(bp)

REPORT_ROLES = ("ar_specialist", "credit_manager", "controller", "admin", "process_owner")
READER_ROLES = (*REPORT_ROLES, "sales_rep")
DSO_DEFAULT_DAYS = 90
TREND_MONTHS = 6
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
BUCKET_LABELS = {b: ("Current" if b == "current" else f"{b} days") for b in BUCKETS}


class BadQuery(ValueError):
    """A query parameter a person typed that makes no sense; shown on the page."""


def parse_day(raw: str | None, name: str, default: date) -> date:
    """An ISO date from the query string; the default when empty."""
    raw = (raw or "").strip()
    if not raw:
        return default
    try:
        if not _ISO_DATE.fullmatch(raw):
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise BadQuery(f"The {name} “{raw[:40]}” is not a date: use YYYY-MM-DD.") from None


def month_ends(today: date, count: int = TREND_MONTHS) -> list[date]:
    """The last ``count`` month-ends before ``today``, oldest first."""
    ends = []
    end = today.replace(day=1) - timedelta(days=1)
    for _ in range(count):
        ends.append(end)
        end = end.replace(day=1) - timedelta(days=1)
    return ends[::-1]


def dso_trend(start: date, end: date, today: date) -> tuple[DsoResult, list[DsoResult]]:
    """DSO of the chosen span and of each recent calendar month, from one read of the ledger:
    the facts loaded up to the latest day answer every earlier day too."""
    months = month_ends(today)
    latest = max(end, months[-1])
    invoices = load_invoice_facts(latest)
    credits = load_credits(latest)
    chosen = compute_dso(invoices, credits, start, end)
    trend = [compute_dso(invoices, credits, m.replace(day=1), m) for m in months]
    return chosen, trend


def _rep_filter(me: User) -> str | None:
    """None for the whole ledger; the user name for a sales rep without a report role."""
    if me.has_role(*REPORT_ROLES):
        return request.args.get("sales_rep") or None
    return me.username


def _names(numbers: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(numbers))
    names: dict[str, str] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        q = db.select(Customer.number, Customer.name).where(Customer.number.in_(chunk))
        names.update(dict(db.session.execute(q).all()))
    return names


def _sales_reps() -> list[str]:
    q = db.select(Customer.sales_rep).where(Customer.sales_rep.is_not(None)).distinct()
    return sorted(r for r in db.session.execute(q).scalars() if r)


# --- CSV --------------------------------------------------------------------------------


def _cell(value: str) -> str:
    """Text that a spreadsheet would run as a formula (=, +, -, @) is quoted with a '."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv_response(rows: list[list[str]], filename: str) -> Response:
    """A download; the file name (it holds a rep or customer from the URL) keeps to a safe set
    of characters, so nothing typed in the address can break the header."""
    filename = re.sub(r"[^A-Za-z0-9._-]+", "-", filename.replace("+", "plus"))
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",  # ledger data, like the pages
        },
    )


def aging_rows(aging: Aging, names: dict[str, str]) -> list[list[str]]:
    """The report as CSV rows: a header, one row per customer, then the totals."""
    rows = [["customer_number", "name", *BUCKETS, "total", "unapplied_cash"]]
    for number in sorted(aging.customers):
        buckets = aging.customers[number]
        rows.append(
            [
                _cell(number),
                _cell(names.get(number, "")),
                *(f"{buckets[b]:.2f}" for b in BUCKETS),
                f"{aging.customer_total(number):.2f}",
                f"{aging.unapplied.get(number, 0):.2f}",
            ]
        )
    rows.append(
        [
            "TOTAL",
            "",
            *(f"{aging.totals[b]:.2f}" for b in BUCKETS),
            f"{aging.total:.2f}",
            f"{aging.unapplied_total:.2f}",
        ]
    )
    return rows


def invoice_rows(items: list[OpenItem]) -> list[list[str]]:
    rows = [["invoice_number", "invoice_date", "due_date", "amount", "open_balance",
             "days_past_due", "disputed"]]  # fmt: skip
    for i in items:
        rows.append(
            [
                _cell(i.number),
                i.invoice_date.isoformat(),
                i.due_date.isoformat(),
                f"{i.amount:.2f}",
                f"{i.open_balance:.2f}",
                str(i.days_past_due),
                "true" if i.disputed else "false",
            ]
        )
    rows.append(["TOTAL", "", "", "", f"{total(items):.2f}", "", ""])
    return rows


# --- pages ------------------------------------------------------------------------------


@bp.get("/reports")
@roles_required(*READER_ROLES)
def index():
    return render_template("reports/index.html")


@dataclass(frozen=True)
class AgingQuery:
    as_of: date
    sales_rep: str | None


def _aging_query(me: User) -> AgingQuery:
    return AgingQuery(parse_day(request.args.get("as_of"), "date", date.today()), _rep_filter(me))


@bp.get("/reports/aging")
@roles_required(*READER_ROLES)
def aging():
    me = user()
    context = {"reps": _sales_reps() if me.has_role(*REPORT_ROLES) else [], "labels": BUCKET_LABELS}
    try:
        query = _aging_query(me)
    except BadQuery as exc:
        return render_template(
            "reports/aging.html", error=str(exc), as_of=request.args.get("as_of", ""), **context
        ), 422
    report = aging_report(query.as_of, sales_rep=query.sales_rep)
    return render_template(
        "reports/aging.html",
        error=None,
        report=report,
        names=_names(report.customers),
        as_of=query.as_of.isoformat(),
        sales_rep=query.sales_rep if me.has_role(*REPORT_ROLES) else None,
        **context,
    )


@bp.get("/reports/aging.csv")
@roles_required(*READER_ROLES)
def aging_csv():
    try:
        query = _aging_query(user())
    except BadQuery as exc:
        abort(400, description=str(exc))
    report = aging_report(query.as_of, sales_rep=query.sales_rep)
    suffix = f"-{query.sales_rep}" if query.sales_rep else ""
    return _csv_response(
        aging_rows(report, _names(report.customers)), f"aging-{query.as_of}{suffix}.csv"
    )


def _drill_down(me: User) -> tuple[Customer, AgingQuery, str, list[OpenItem]]:
    """The invoices behind one amount of the report; 404 / 403 as the report's reader may."""
    query = _aging_query(me)
    bucket = request.args.get("bucket", "")
    if bucket not in BUCKETS:
        raise BadQuery(f"“{bucket[:40]}” is not an aging bucket: one of {', '.join(BUCKETS)}.")
    number = request.args.get("customer", "")
    customer = db.session.execute(
        db.select(Customer).where(Customer.number == number)
    ).scalar_one_or_none()
    if customer is None:
        abort(404, description=f"There is no customer {number}.")
    if not me.has_role(*REPORT_ROLES) and customer.sales_rep != me.username:
        abort(403, description="This customer is not one of yours.")
    return customer, query, bucket, in_bucket(load_open_items(customer, query.as_of), bucket)


@bp.get("/reports/aging/invoices")
@roles_required(*READER_ROLES)
def aging_invoices():
    try:
        customer, query, bucket, items = _drill_down(user())
    except BadQuery as exc:
        return render_template("reports/aging_invoices.html", error=str(exc)), 422
    return render_template(
        "reports/aging_invoices.html",
        error=None,
        customer=customer,
        as_of=query.as_of.isoformat(),
        bucket=bucket,
        bucket_label=BUCKET_LABELS[bucket],
        items=items,
        total=total(items),
    )


@bp.get("/reports/aging/invoices.csv")
@roles_required(*READER_ROLES)
def aging_invoices_csv():
    try:
        customer, query, bucket, items = _drill_down(user())
    except BadQuery as exc:
        abort(400, description=str(exc))
    return _csv_response(invoice_rows(items), f"aging-{customer.number}-{bucket}-{query.as_of}.csv")


@bp.get("/reports/dso")
@roles_required(*READER_ROLES)
def dso():
    today = date.today()
    raw_start, raw_end = request.args.get("start", ""), request.args.get("end", "")
    try:
        end = parse_day(raw_end, "end date", today)
        try:
            default_start = end - timedelta(days=DSO_DEFAULT_DAYS - 1)
        except OverflowError:
            raise BadQuery("Choose an end date after the year 1.") from None
        start = parse_day(raw_start, "start date", default_start)
        if end < start:
            raise BadQuery("The end date must be on or after the start date.")
    except BadQuery as exc:
        return render_template(
            "reports/dso.html", error=str(exc), start=raw_start, end=raw_end
        ), 422
    chosen, trend = dso_trend(start, end, today)
    return render_template(
        "reports/dso.html",
        error=None,
        start=start.isoformat(),
        end=end.isoformat(),
        result=chosen,
        trend=trend,
    )
