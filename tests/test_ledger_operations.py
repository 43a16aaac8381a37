"""The ledger writes the cases make, and the balances and aging they leave behind."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from casemgr.extensions import db
from casemgr.ledger.aging import aging_report
from casemgr.ledger.imports import import_csv
from casemgr.ledger.metrics import UnknownCustomer, customer_summary
from casemgr.ledger.operations import (
    UnknownInvoice,
    add_note,
    hold_order,
    invoice_open_balance,
    parse_amount,
    post_credit_memo,
    post_payment,
    post_write_off,
    record_promise,
    review_promises,
    set_customer_hold,
    set_order_status,
)
from casemgr.models import AccountNote, CreditMemo, Customer, Invoice, Order, PromiseToPay

D = Decimal
TODAY = date.today()


def _invoice(number: str) -> Invoice:
    return db.session.execute(select(Invoice).filter_by(number=number)).scalar_one()


@pytest.fixture
def ledger(ctx):
    import_csv(
        "customers",
        "number,name,credit_limit,terms_days\nC-1,Acme,1000.00,30\nC-2,Bolt,500.00,30\n",
    )
    import_csv(
        "invoices",
        "customer_number,number,invoice_date,due_date,amount\n"
        "C-1,I-OLD,2024-01-01,2024-01-31,300.00\n"
        "C-1,I-NEW,2024-03-01,2024-03-31,200.00\n"
        "C-2,I-BOLT,2024-03-01,2024-03-31,50.00\n",
    )
    import_csv("orders", "customer_number,number,order_date,amount\nC-1,SO-1,2024-03-05,700.00\n")
    db.session.commit()
    return ctx


def test_summary_of_a_customer(ledger):
    s = customer_summary("C-1", date(2024, 4, 15))
    # Open AR 300 + 200 = 500.00; unshipped order 700.00; exposure 1,200.00 > 1,000.00 limit.
    assert s.open_balance == D("500.00")
    assert s.open_orders == D("700.00")
    assert s.exposure == D("1200.00")
    assert s.available_credit == D("-200.00")
    # I-OLD due 1-31 is 75 days past due on 4-15 (29 + 31 + 15); I-NEW 15 days.
    assert s.oldest_past_due_days == 75
    assert s.aging["61-90"] == D("300.00")
    assert s.aging["1-30"] == D("200.00")
    assert s.past_due == D("500.00")
    assert s.average_days_late is None
    with pytest.raises(UnknownCustomer):
        customer_summary("C-404")


def test_shipped_and_cancelled_orders_leave_the_exposure(ledger):
    set_order_status("SO-1", "shipped")
    assert customer_summary("C-1", date(2024, 4, 15)).open_orders == D("0.00")
    hold_order("C-1", "SO-2", "125.00", date(2024, 4, 1))
    assert customer_summary("C-1", date(2024, 4, 15)).open_orders == D("125.00")
    with pytest.raises(ValueError, match="unknown order status"):
        set_order_status("SO-1", "lost")
    with pytest.raises(ValueError, match="another customer"):
        hold_order("C-2", "SO-2", "1.00")


def test_a_credit_memo_reduces_the_invoice_and_is_not_committed(ledger):
    memo = post_credit_memo("C-1", "I-OLD", "120.00", "pricing", case_id=7)
    assert memo.posted_on == TODAY
    assert invoice_open_balance(_invoice("I-OLD")) == D("180.00")
    db.session.rollback()  # the caller owns the transaction: nothing was committed
    assert db.session.execute(select(func.count(CreditMemo.id))).scalar_one() == 0
    assert invoice_open_balance(_invoice("I-OLD")) == D("300.00")


def test_a_credit_memo_dated_in_the_past_changes_past_aging(ledger):
    post_credit_memo("C-1", "I-OLD", "300.00", "duplicate billing", posted_on=date(2024, 2, 15))
    assert aging_report(date(2024, 2, 14)).total == D("300.00")
    assert aging_report(date(2024, 2, 15)).total == D("0.00")


@pytest.mark.parametrize(
    ("customer", "invoice", "amount", "error", "message"),
    [
        ("C-404", "I-OLD", "1.00", UnknownCustomer, "unknown customer 'C-404'"),
        ("C-1", "I-404", "1.00", UnknownInvoice, "unknown invoice 'I-404'"),
        ("C-2", "I-OLD", "1.00", UnknownInvoice, "does not belong to customer 'C-2'"),
        ("C-1", "I-OLD", "300.01", ValueError, r"more than the open balance .* \(300.00\)"),
        ("C-1", "I-OLD", "0", ValueError, "greater than zero"),
        ("C-1", "I-OLD", "-5", ValueError, "greater than zero"),
        ("C-1", "I-OLD", "1.001", ValueError, "more than two decimals"),
        ("C-1", "I-OLD", "abc", ValueError, "not a number"),
        ("C-1", "I-OLD", 1.5, ValueError, "not float"),
        ("C-1", "I-OLD", "1e400", ValueError, "too large"),
        ("C-1", "I-OLD", "NaN", ValueError, "finite"),
    ],
)
def test_credit_memo_refusals(ledger, customer, invoice, amount, error, message):
    with pytest.raises(error, match=message):
        post_credit_memo(customer, invoice, amount, "reason")
    assert db.session.execute(select(func.count(CreditMemo.id))).scalar_one() == 0


def test_unknown_customer_and_invoice_errors_are_value_errors():
    assert issubclass(UnknownCustomer, ValueError)
    assert issubclass(UnknownInvoice, ValueError)
    assert parse_amount(7) == D("7.00")


def test_a_write_off_without_invoice_is_spread_oldest_due_first(ledger):
    rows = post_write_off("C-1", None, "350.00", "bad_debt", case_id=3)
    # I-OLD (due 1-31) is written off in full, I-NEW (due 3-31) for the remaining 50.00.
    assert [(r.invoice.number, r.amount) for r in rows] == [
        ("I-OLD", D("300.00")),
        ("I-NEW", D("50.00")),
    ]
    assert invoice_open_balance(_invoice("I-NEW")) == D("150.00")
    assert customer_summary("C-1").open_balance == D("150.00")
    with pytest.raises(ValueError, match="more than the open balance"):
        post_write_off("C-1", None, "150.01", "bad_debt")
    with pytest.raises(ValueError, match="unknown write-off kind"):
        post_write_off("C-1", "I-NEW", "1.00", "goodwill")


def test_a_small_balance_write_off_on_one_invoice(ledger):
    (row,) = post_write_off("C-2", "I-BOLT", "50.00", "small_balance")
    assert row.customer.number == "C-2"
    assert invoice_open_balance(_invoice("I-BOLT")) == D("0.00")


def test_payments_report_when_the_balance_is_cleared(ledger):
    assert post_payment("C-1", "300.00", invoice_number="I-OLD", method="ach") is False
    assert invoice_open_balance(_invoice("I-OLD")) == D("0.00")
    with pytest.raises(ValueError, match="more than the open balance"):
        post_payment("C-1", "0.01", invoice_number="I-OLD")
    # Unapplied cash for the rest clears the account.
    assert post_payment("C-1", "200.00", reference="WIRE-77", method="wire") is True
    assert customer_summary("C-1").open_balance == D("0.00")
    post_payment("C-2", "1.00", reference="X")
    with pytest.raises(ValueError, match="already posted"):
        post_payment("C-2", "1.00", reference="X")


def test_payment_refusals(ledger):
    with pytest.raises(ValueError, match="unknown payment method"):
        post_payment("C-1", "1.00", method="bitcoin")
    with pytest.raises(ValueError, match="in the future"):
        post_payment("C-1", "1.00", received_date=TODAY + timedelta(days=1))
    with pytest.raises(ValueError, match="more than the open balance of customer C-2"):
        post_payment("C-2", "50.01")
    with pytest.raises(UnknownCustomer):
        post_payment("C-404", "1.00")


def test_a_payment_received_later_leaves_the_invoice_open_in_past_aging(ledger):
    post_payment("C-2", "50.00", invoice_number="I-BOLT", received_date=date(2024, 5, 10))
    assert aging_report(date(2024, 5, 9)).customers["C-2"]["31-60"] == D("50.00")
    assert "C-2" not in aging_report(date(2024, 5, 10)).customers
    # Due 3-31, paid 5-10: 40 days late.
    assert customer_summary("C-2").average_days_late == D("40.00")


def test_holds_leave_a_note(ledger):
    set_customer_hold("C-1", True, "referred to agency", cash_in_advance=True, author="mgr")
    customer = db.session.execute(select(Customer).filter_by(number="C-1")).scalar_one()
    assert (customer.on_hold, customer.cash_in_advance) == (True, True)
    assert customer.hold_reason == "referred to agency"
    set_customer_hold("C-1", False, "paid in full")
    assert (customer.on_hold, customer.hold_reason) == (False, None)
    notes = db.session.execute(select(AccountNote.text, AccountNote.author)).all()
    assert notes == [
        ("Account put on hold: referred to agency (cash in advance: yes)", "mgr"),
        ("Hold released: paid in full", "system"),
    ]
    with pytest.raises(ValueError, match="needs a reason"):
        set_customer_hold("C-1", True, " ")


def test_notes(ledger):
    note = add_note("C-2", "spec", "  Call only the AP manager  ", special_handling=True)
    assert (note.text, note.special_handling) == ("Call only the AP manager", True)
    with pytest.raises(ValueError):
        add_note("C-2", "spec", "")


def test_promises_refuse_past_dates_and_excess(ledger):
    promise = record_promise("C-1", "250.00", TODAY, case_id=9)
    assert (promise.status, promise.amount) == ("open", D("250.00"))
    with pytest.raises(ValueError, match="in the past"):
        record_promise("C-1", "10.00", TODAY - timedelta(days=1))
    with pytest.raises(ValueError, match="more than the open balance"):
        record_promise("C-1", "500.01", TODAY + timedelta(days=3))


def test_promises_are_kept_by_payment_and_broken_by_the_calendar(ledger):
    kept = record_promise("C-1", "100.00", TODAY + timedelta(days=5))
    broken = record_promise("C-2", "50.00", TODAY + timedelta(days=2))
    db.session.flush()
    post_payment("C-1", "100.00", invoice_number="I-OLD")
    assert review_promises(TODAY) == []
    assert (kept.status, broken.status) == ("kept", "open")
    assert review_promises(TODAY + timedelta(days=3)) == [broken]
    assert broken.status == "broken"
    assert customer_summary("C-2").broken_promises == 1
    statuses = db.session.execute(select(PromiseToPay.status).order_by(PromiseToPay.id))
    assert statuses.scalars().all() == ["kept", "broken"]


def test_orders_recorded_on_hold(ledger):
    order = hold_order("C-2", "SO-9", "75.00")
    db.session.flush()
    assert db.session.get(Order, order.id).status == "held"
    assert customer_summary("C-2").exposure == D("125.00")
