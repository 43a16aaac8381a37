"""Properties of the ledger as the cases and imports write it, checked against a plain model.

Hypothesis draws a customer's invoices and a run of ledger writes (payments to an invoice or
on account, credit memos, write-offs of an invoice or of the balance) with their dates; the
writes go through ``casemgr.ledger.operations`` into the database, and a few lines of Python
here keep the same books by hand. After every run the database's figures (open balances,
the customer summary, the aging at a drawn date, DSO) must be the model's, and a write the
ledger refused must be exactly one the model says would over-apply, leaving nothing behind.

The pure aging and DSO functions have their own properties in test_ledger_computations.py;
these go through the database, where the loading queries and the ledger writes live. Each
example is rolled back, as the ledger functions never commit.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from casemgr.extensions import db
from casemgr.ledger.aging import BUCKETS, MAX_MONEY, aging_report, bucket_for
from casemgr.ledger.imports import import_csv
from casemgr.ledger.metrics import customer_summary, dso_report
from casemgr.ledger.operations import (
    invoice_open_balance,
    post_credit_memo,
    post_payment,
    post_write_off,
)
from casemgr.models import CreditMemo, Invoice, Payment, WriteOff

ZERO = Decimal("0.00")
START = date(2024, 1, 1)
FAR = date(2100, 1, 1)
LIMIT = Decimal("50000.00")

DB_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    # ``ctx`` is one app context for all examples; each example rolls its writes back.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

cents = st.integers(1, 500_000).map(lambda c: Decimal(c).scaleb(-2))
days = st.integers(0, 365)


@dataclass
class Inv:
    number: str
    issued: date
    due: date
    amount: Decimal
    reductions: list[tuple[date, Decimal]] = field(default_factory=list)

    def open_on(self, day: date) -> Decimal:
        if self.issued > day:
            return ZERO
        return max(self.amount - sum((a for d, a in self.reductions if d <= day), ZERO), ZERO)

    @property
    def open(self) -> Decimal:
        return self.open_on(FAR)


@dataclass
class Books:
    """The model: what the ledger should say, kept by hand."""

    invoices: list[Inv]
    unapplied: list[tuple[date, Decimal]] = field(default_factory=list)

    def balance(self, day: date = FAR) -> Decimal:
        owed = sum((i.open_on(day) for i in self.invoices), ZERO)
        return owed - sum((a for d, a in self.unapplied if d <= day), ZERO)


invoice_specs = st.lists(
    st.tuples(days, st.sampled_from([0, 10, 30, 60]), cents), min_size=1, max_size=5
)
# (kind, invoice index or None, amount, day); the index is taken modulo the invoice count.
writes = st.lists(
    st.tuples(
        st.sampled_from(["payment", "credit_memo", "write_off"]),
        st.one_of(st.none(), st.integers(0, 4)),
        cents,
        days,
    ),
    max_size=8,
)


def _seed(specs) -> Books:
    import_csv("customers", f"number,name,credit_limit,terms_days\nP-1,Prop,{LIMIT},30\n")
    invoices = [
        Inv(f"P-{n}", START + timedelta(d), START + timedelta(d + terms), amount)
        for n, (d, terms, amount) in enumerate(specs)
    ]
    rows = [f"P-1,{i.number},{i.issued},{i.due},{i.amount}" for i in invoices]
    import_csv(
        "invoices", "customer_number,number,invoice_date,due_date,amount\n" + "\n".join(rows)
    )
    return Books(invoices)


def _write(books: Books, kind: str, index: int | None, amount: Decimal, day: date) -> bool:
    """Make one write in the ledger and in the model; False (and nothing kept) if refused."""
    inv = None if index is None else books.invoices[index % len(books.invoices)]
    if kind == "credit_memo" and inv is None:
        inv = books.invoices[0]  # a credit memo always names an invoice
    room = inv.open if inv is not None else books.balance()
    before = _db_state()
    try:
        if kind == "payment":
            post_payment(
                "P-1", amount, received_date=day, invoice_number=inv.number if inv else None
            )
        elif kind == "credit_memo":
            post_credit_memo("P-1", inv.number, amount, "property test", posted_on=day)
        else:
            post_write_off(
                "P-1", inv.number if inv else None, amount, "small_balance", posted_on=day
            )
    except ValueError as exc:
        assert amount > room, f"refused {kind} of {amount} with {room} open: {exc}"
        assert "more than the open balance" in str(exc)
        assert _db_state() == before, "a refused write left something behind"
        event(f"{kind} refused")
        return False
    assert amount <= room, f"accepted {kind} of {amount} with only {room} open"
    event(f"{kind} {'of the balance' if inv is None else 'of an invoice'} accepted")
    if inv is not None:
        inv.reductions.append((day, amount))
    elif kind == "payment":
        books.unapplied.append((day, amount))
    else:  # a write-off of the balance is spread over the open invoices, oldest due first
        left = amount
        for target in sorted(books.invoices, key=lambda i: (i.due, books.invoices.index(i))):
            part = min(left, target.open)
            if part > 0:
                target.reductions.append((day, part))
                left -= part
    return True


def _db_state() -> tuple:
    db.session.flush()
    return tuple(
        tuple(db.session.execute(select(model.amount).order_by(model.id)).scalars())
        for model in (Payment, CreditMemo, WriteOff)
    )


def _applied_in_db(invoice: Invoice) -> Decimal:
    return sum(
        (
            a
            for model in (Payment, CreditMemo, WriteOff)
            for a in db.session.execute(
                select(model.amount).where(model.invoice_id == invoice.id)
            ).scalars()
        ),
        ZERO,
    )


@DB_SETTINGS
@given(invoice_specs, writes, days)
def test_the_ledger_keeps_the_same_books_as_a_hand_model(ctx, specs, run, as_of_offset):
    try:
        books = _seed(specs)
        for kind, index, amount, offset in run:
            _write(books, kind, index, amount, START + timedelta(offset))

        for inv in books.invoices:
            row = db.session.execute(select(Invoice).filter_by(number=inv.number)).scalar_one()
            open_now = invoice_open_balance(row)
            # Payments + credit memos + write-offs + what is still open == the invoice amount.
            assert open_now + _applied_in_db(row) == row.amount == inv.amount
            assert open_now == inv.open >= 0
            assert open_now.as_tuple().exponent == -2

        summary = customer_summary("P-1", FAR)
        assert summary.open_balance == books.balance()
        assert sum(summary.aging.values(), ZERO) == sum((i.open for i in books.invoices), ZERO)
        assert summary.exposure == summary.open_balance  # no orders
        assert summary.available_credit == LIMIT - summary.exposure

        as_of = START + timedelta(as_of_offset)
        aging = aging_report(as_of)
        expected = {b: ZERO for b in BUCKETS}
        for inv in books.invoices:
            if inv.open_on(as_of) > 0:
                expected[bucket_for((as_of - inv.due).days)] += inv.open_on(as_of)
        assert aging.totals == expected
        assert aging.unapplied_total == sum((a for d, a in books.unapplied if d <= as_of), ZERO)
        assert all(v.as_tuple().exponent == -2 for v in aging.totals.values())
    finally:
        db.session.rollback()


@DB_SETTINGS
@given(invoice_specs, writes, days, st.integers(0, 365))
def test_dso_is_its_definition_on_any_ledger(ctx, specs, run, start_offset, span):
    try:
        books = _seed(specs)
        for kind, index, amount, offset in run:
            _write(books, kind, index, amount, START + timedelta(offset))
        start = START + timedelta(start_offset)
        end = start + timedelta(span)
        result = dso_report(start, end)

        balance = books.balance(end)
        sales = sum((i.amount for i in books.invoices if start <= i.issued <= end), ZERO)
        assert result.ar_balance == balance
        assert result.credit_sales == sales
        assert result.days == span + 1
        if sales == 0:
            assert result.dso is None
        else:
            exact = balance / sales * (span + 1)
            assert abs(result.dso - exact) <= Decimal("0.005")
            assert result.dso.as_tuple().exponent == -2
            if not any(d <= end for d, _ in books.unapplied):
                assert result.dso >= 0  # only cash on account can make what is owed negative
    finally:
        db.session.rollback()


@DB_SETTINGS
@given(invoice_specs, st.data())
def test_a_payment_moved_off_its_invoice_and_back_keeps_every_total(ctx, specs, data):
    """Re-importing a payment without its invoice undoes the application; the cash stays."""
    try:
        books = _seed(specs)
        target = data.draw(st.sampled_from(books.invoices))
        amount = data.draw(
            st.integers(1, int(target.amount * 100)).map(lambda c: Decimal(c).scaleb(-2))
        )
        header = "customer_number,reference,received_date,amount,method,invoice_number\n"
        applied = f"P-1,R-1,2024-06-01,{amount},wire,{target.number}\n"
        unapplied = f"P-1,R-1,2024-06-01,{amount},wire,\n"

        def figures():
            rows = db.session.execute(select(Invoice).order_by(Invoice.id)).scalars()
            return [invoice_open_balance(r) for r in rows], customer_summary("P-1", FAR)

        opens_before, summary_before = figures()
        import_csv("payments", header + applied)
        opens_applied, summary_applied = figures()
        import_csv("payments", header + unapplied)
        opens_back, summary_back = figures()
        import_csv("payments", header + applied)
        opens_again, summary_again = figures()

        index = books.invoices.index(target)
        assert opens_applied[index] == opens_before[index] - amount
        assert opens_back == opens_before  # every invoice as before the payment
        assert opens_again == opens_applied  # and applying again is the same as the first time
        # The customer owes the same whether the cash sits on the invoice or on the account.
        assert summary_applied.open_balance == summary_back.open_balance
        assert summary_before.open_balance - amount == summary_back.open_balance
        assert summary_again == summary_applied
        count = db.session.execute(select(Payment.id)).scalars().all()
        assert len(count) == 1  # re-importing the same reference never duplicates
    finally:
        db.session.rollback()


# --- What the API shows -----------------------------------------------------------------------

MONEY_TEXT = re.compile(r"^-?\d+\.\d{2}$")
_customers = itertools.count()


def _post_csv(api, kind: str, text: str) -> None:
    resp = api.as_("spec").post(
        f"/api/v1/imports/{kind}", data=text.encode(), headers={"Content-Type": "text/csv"}
    )
    assert resp.status_code == 200, resp.get_json()


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    invoice_specs,
    st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 4)), cents, days), max_size=4),
    days,
)
def test_the_api_shows_every_amount_as_text_to_the_cent_and_adding_up(api, specs, pays, at):
    """Imported through the API and read back through it: strings, never floats, and sums
    that agree (each example is a new customer, so earlier ones stay in the report)."""
    number = f"API-{next(_customers)}"
    _post_csv(api, "customers", f"number,name,credit_limit,terms_days\n{number},Api,1000.00,30\n")
    invoices = [
        Inv(f"{number}-{n}", START + timedelta(d), START + timedelta(d + terms), amount)
        for n, (d, terms, amount) in enumerate(specs)
    ]
    rows = [f"{number},{i.number},{i.issued},{i.due},{i.amount}" for i in invoices]
    _post_csv(
        api, "invoices", "customer_number,number,invoice_date,due_date,amount\n" + "\n".join(rows)
    )
    books = Books(invoices)
    lines = []
    for n, (index, amount, offset) in enumerate(pays):
        inv = None if index is None else invoices[index % len(invoices)]
        if inv is not None:
            amount = min(amount, inv.open)  # an import may not over-pay an invoice
            if amount <= 0:
                continue
            inv.reductions.append((START + timedelta(offset), amount))
        else:
            books.unapplied.append((START + timedelta(offset), amount))
        lines.append(
            f"{number},R-{n},{START + timedelta(offset)},{amount},ach,{inv.number if inv else ''}"
        )
    if lines:
        header = "customer_number,reference,received_date,amount,method,invoice_number\n"
        _post_csv(api, "payments", header + "\n".join(lines))

    as_of = START + timedelta(at)
    body = api.as_("mgr").get(f"/api/v1/customers/{number}?as_of={as_of}").get_json()
    money_fields = ["credit_limit", "open_balance", "open_orders", "exposure", "past_due"]
    money_fields += ["available_credit"]
    for name in money_fields:
        assert isinstance(body[name], str) and MONEY_TEXT.match(body[name]), (name, body[name])
    assert all(MONEY_TEXT.match(v) for v in body["aging"].values())
    assert Decimal(body["open_balance"]) == books.balance(as_of)
    owed = sum((i.open_on(as_of) for i in invoices), ZERO)
    assert sum(Decimal(v) for v in body["aging"].values()) == owed
    assert Decimal(body["past_due"]) == owed - Decimal(body["aging"]["current"])

    report = api.as_("ctrl").get(f"/api/v1/reports/aging?as_of={as_of}").get_json()
    assert all(MONEY_TEXT.match(v) for v in report["totals"].values())
    assert sum(Decimal(v) for v in report["totals"].values()) == Decimal(report["total"])
    for row in report["customers"]:
        assert sum(Decimal(row[b]) for b in BUCKETS) == Decimal(row["total"])
    mine = [row for row in report["customers"] if row["number"] == number]
    assert [Decimal(r["total"]) for r in mine] == ([owed] if owed > 0 else [])


@DB_SETTINGS
@given(
    st.lists(
        st.integers(1, int(MAX_MONEY * 100)).map(lambda c: Decimal(c).scaleb(-2)),
        min_size=1,
        max_size=10,
    )
)
def test_every_amount_a_column_holds_comes_back_exactly(ctx, amounts):
    """SQLite keeps NUMERIC as a double: 14 digits must still come back to the cent."""
    try:
        import_csv("customers", "number,name,credit_limit,terms_days\nX-1,Exact,0.00,30\n")
        rows = [f"X-1,X-{n},2024-01-01,2024-01-31,{a}" for n, a in enumerate(amounts)]
        import_csv(
            "invoices", "customer_number,number,invoice_date,due_date,amount\n" + "\n".join(rows)
        )
        db.session.flush()
        db.session.expire_all()
        back = db.session.execute(select(Invoice.amount).order_by(Invoice.id)).scalars().all()
        assert back == amounts
        assert all(isinstance(a, Decimal) and a.as_tuple().exponent == -2 for a in back)
        facts_total = customer_summary("X-1", FAR).open_balance
        assert facts_total == sum(amounts, ZERO)
    finally:
        db.session.rollback()
