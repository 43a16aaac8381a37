"""Aging, DSO, exposure and days late on small ledgers worked out by hand, plus properties.

These call the pure functions only: no app, no database.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casemgr.ledger.aging import (
    BUCKETS,
    Credit,
    InvoiceFacts,
    Reduction,
    age_invoices,
    bucket_for,
    money,
    oldest_days_past_due,
)
from casemgr.ledger.metrics import (
    ar_balance,
    available_credit,
    average_days_late,
    compute_dso,
    credit_sales,
    days_late,
    dso,
    exposure,
    span_days,
)

D = Decimal
AS_OF = date(2024, 3, 31)


def inv(number, issued, due, amount, *reductions, customer="A"):
    return InvoiceFacts(customer, number, issued, due, D(amount), tuple(reductions))


def pay(on, amount):
    return Reduction(on, D(amount), "payment")


# Customer A's ledger, looked at on 2024-03-31 (2024 is a leap year: February has 29 days).
LEDGER_A = [
    # 100.00 less 40.00 paid on 2-15 = 60.00 open; due 1-31, so 29 (Feb) + 31 (Mar) = 60 days
    # past due: bucket 31-60.
    inv("A-1", date(2024, 1, 1), date(2024, 1, 31), "100.00", pay(date(2024, 2, 15), "40.00")),
    # 250.00 open; due 3-02, so 31 - 2 = 29 days past due: bucket 1-30.
    inv("A-2", date(2024, 2, 1), date(2024, 3, 2), "250.00"),
    # 75.50, not due until 4-14: current.
    inv("A-3", date(2024, 3, 15), date(2024, 4, 14), "75.50"),
    # 500.00 paid on 4-10, AFTER the as-of date, so fully open on 3-31. Due 2023-10-31:
    # 30 (Nov) + 31 (Dec) + 31 (Jan) + 29 (Feb) + 31 (Mar) = 152 days: bucket 120+.
    inv("A-4", date(2023, 10, 1), date(2023, 10, 31), "500.00", pay(date(2024, 4, 10), "500.00")),
    # Issued after the as-of date: not in the aging at all.
    inv("A-5", date(2024, 4, 1), date(2024, 5, 1), "999.00"),
    # 300.00 less a 100.00 credit memo and a 200.00 write-off posted ON 3-31: closed that day.
    inv(
        "A-6",
        date(2023, 12, 1),
        date(2023, 12, 31),
        "300.00",
        Reduction(date(2024, 1, 20), D("100.00"), "credit_memo"),
        Reduction(date(2024, 3, 31), D("200.00"), "write_off"),
    ),
    # 80.00 due 2023-12-20: 11 (Dec) + 31 + 29 + 31 = 102 days: bucket 91-120.
    inv("A-7", date(2023, 11, 20), date(2023, 12, 20), "80.00"),
]


def test_buckets_of_a_hand_worked_ledger():
    aging = age_invoices(LEDGER_A, AS_OF)
    assert aging.totals == {
        "current": D("75.50"),
        "1-30": D("250.00"),
        "31-60": D("60.00"),
        "61-90": D("0.00"),
        "91-120": D("80.00"),
        "120+": D("500.00"),
    }
    # 75.50 + 250 + 60 + 80 + 500
    assert aging.total == D("965.50")
    assert aging.customers["A"] == aging.totals


def test_an_invoice_paid_later_is_open_on_earlier_dates_and_closed_after():
    a4 = LEDGER_A[3]
    assert a4.open_on(date(2024, 4, 9)) == D("500.00")
    assert a4.open_on(date(2024, 4, 10)) == D("0.00")  # paid during that day
    assert a4.open_on(date(2023, 9, 30)) == D("0.00")  # not issued yet
    assert a4.closed_on() == date(2024, 4, 10)
    assert a4.closed_on(AS_OF) is None


def test_aging_before_the_first_payment_shows_the_full_amount():
    # On 2024-02-14 A-1 had nothing paid: 100.00, 14 days past due.
    aging = age_invoices(LEDGER_A[:1], date(2024, 2, 14))
    assert aging.totals["1-30"] == D("100.00")
    assert aging.total == D("100.00")


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (-5, "current"),
        (0, "current"),
        (1, "1-30"),
        (30, "1-30"),
        (31, "31-60"),
        (60, "31-60"),
        (61, "61-90"),
        (90, "61-90"),
        (91, "91-120"),
        (120, "91-120"),
        (121, "120+"),
        (4000, "120+"),
    ],
)
def test_bucket_edges(days, bucket):
    assert bucket_for(days) == bucket


def test_dso_by_hand():
    # Span 2024-01-01..2024-03-31: 31 + 29 + 31 = 91 days, both ends counted.
    # Credit sales: A-1 100.00 + A-2 250.00 + A-3 75.50 = 425.50 (A-4, A-6, A-7 are 2023).
    # AR at the end of 3-31: 965.50 (the aging above).
    # DSO = 965.50 / 425.50 x 91 = 206.4876... -> 206.49
    result = compute_dso(LEDGER_A, [], date(2024, 1, 1), AS_OF)
    assert result.days == 91
    assert result.credit_sales == D("425.50")
    assert result.ar_balance == D("965.50")
    assert result.dso == D("206.49")


def test_unapplied_cash_lowers_the_ar_balance_but_not_the_buckets():
    # 65.50 of unapplied cash received 3-20: AR = 965.50 - 65.50 = 900.00;
    # DSO = 900.00 / 425.50 x 91 = 192.4794... -> 192.48. Cash received after 3-31 is ignored.
    credits = [Credit("A", date(2024, 3, 20), D("65.50")), Credit("A", date(2024, 4, 2), D("9"))]
    assert ar_balance(LEDGER_A, credits, AS_OF) == D("900.00")
    assert compute_dso(LEDGER_A, credits, date(2024, 1, 1), AS_OF).dso == D("192.48")
    aging = age_invoices(LEDGER_A, AS_OF, credits)
    assert aging.total == D("965.50")
    assert aging.unapplied == {"A": D("65.50")}


def test_dso_without_sales_is_none_and_span_counts_both_ends():
    assert dso(D("100.00"), D("0.00"), 30) is None
    assert span_days(date(2024, 1, 1), date(2024, 1, 1)) == 1
    assert span_days(date(2023, 1, 1), date(2023, 12, 31)) == 365
    assert credit_sales(LEDGER_A, date(2024, 3, 15), date(2024, 3, 15)) == D("75.50")


def test_exposure_and_available_credit():
    # Open AR 965.50 + unshipped orders 1,000.00 = 1,965.50; a 1,500.00 limit is exceeded by
    # 465.50, and the sign is kept so the hold-release check can see it.
    total = exposure(D("965.50"), D("1000.00"))
    assert total == D("1965.50")
    assert available_credit(D("1500.00"), total) == D("-465.50")
    assert available_credit(D("5000.00"), total) == D("3034.50")


def test_oldest_past_due():
    assert oldest_days_past_due(LEDGER_A, AS_OF) == 152
    assert oldest_days_past_due(LEDGER_A[2:3], AS_OF) == 0  # only a current invoice


# Customer B's payment habit.
LEDGER_B = [
    # Paid in full 6 days early: 0 days late.
    inv("B-1", date(2024, 1, 1), date(2024, 1, 31), "40.00", pay(date(2024, 1, 25), "40.00")),
    # Paid in two halves, the second on 3-10; due 2-29: fully paid 10 days late.
    inv(
        "B-2",
        date(2024, 1, 30),
        date(2024, 2, 29),
        "100.00",
        pay(date(2024, 3, 5), "50.00"),
        pay(date(2024, 3, 10), "50.00"),
    ),
    # Due 3-31, paid 4-07: 7 days late.
    inv("B-3", date(2024, 3, 1), date(2024, 3, 31), "10.00", pay(date(2024, 4, 7), "10.00")),
    # Only partly paid: not a paid invoice, not counted.
    inv("B-4", date(2024, 1, 1), date(2024, 3, 1), "90.00", pay(date(2024, 5, 1), "10.00")),
    # Closed by a credit memo alone: nothing was paid, not counted.
    inv(
        "B-5",
        date(2024, 1, 1),
        date(2024, 2, 10),
        "20.00",
        Reduction(date(2024, 6, 1), D("20.00"), "credit_memo"),
    ),
]


def test_average_days_late_by_hand():
    # (0 + 10 + 7) / 3 = 5.666... -> 5.67
    assert [days_late(i) for i in LEDGER_B] == [0, 10, 7, None, None]
    assert average_days_late(LEDGER_B) == D("5.67")
    # On 2024-04-01 B-3 was not paid yet: (0 + 10) / 2 = 5.00
    assert average_days_late(LEDGER_B, date(2024, 4, 1)) == D("5.00")
    assert average_days_late(LEDGER_B[3:]) is None


def test_a_credit_memo_closing_a_short_payment_sets_the_paid_date():
    # 100.00 due 1-31: 90.00 paid 1-20, the 10.00 difference credited on 2-20: paid 20 days late.
    short = inv(
        "C-1",
        date(2024, 1, 1),
        date(2024, 1, 31),
        "100.00",
        pay(date(2024, 1, 20), "90.00"),
        Reduction(date(2024, 2, 20), D("10.00"), "credit_memo"),
    )
    assert days_late(short) == 20


def test_rounding_is_half_up_not_bankers():
    # One invoice 1 day late and seven on time: 1 / 8 = 0.125 -> 0.13 (banker's would say 0.12).
    on_time = [
        inv(f"R-{n}", date(2024, 1, 1), date(2024, 1, 31), "1.00", pay(date(2024, 1, 31), "1.00"))
        for n in range(7)
    ]
    late = inv("R-7", date(2024, 1, 1), date(2024, 1, 31), "1.00", pay(date(2024, 2, 1), "1.00"))
    assert average_days_late([*on_time, late]) == D("0.13")
    assert money(D("2.675")) == D("2.68")
    assert money(D("-2.675")) == D("-2.68")


# --- Properties --------------------------------------------------------------------------

START = date(2023, 1, 1)
cents = st.integers(min_value=1, max_value=2_000_000).map(lambda c: Decimal(c) / 100)
offsets = st.integers(min_value=0, max_value=700)


@st.composite
def invoices(draw):
    issued = START + timedelta(days=draw(offsets))
    due = issued + timedelta(days=draw(st.sampled_from([0, 10, 30, 45, 60])))
    amount = draw(cents)
    reductions = []
    left = amount
    for _ in range(draw(st.integers(0, 3))):
        if left <= 0:
            break
        part = min(left, draw(cents))
        on = issued + timedelta(days=draw(st.integers(-5, 200)))
        reductions.append(Reduction(on, part, draw(st.sampled_from(["payment", "credit_memo"]))))
        left -= part
    customer = draw(st.sampled_from(["A", "B", "C"]))
    return InvoiceFacts(customer, f"I{draw(st.integers())}", issued, due, amount, tuple(reductions))


ledgers = st.lists(invoices(), max_size=25)
as_of_dates = offsets.map(lambda d: START + timedelta(days=d))


@given(ledgers, as_of_dates)
def test_buckets_sum_to_the_open_ar(ledger, as_of):
    aging = age_invoices(ledger, as_of)
    open_ar = sum((i.open_on(as_of) for i in ledger), Decimal(0))
    assert aging.total == open_ar == ar_balance(ledger, [], as_of)
    assert sum(aging.customer_total(c) for c in aging.customers) == aging.total
    for bucket in BUCKETS:
        assert sum(row[bucket] for row in aging.customers.values()) == aging.totals[bucket]
        assert aging.totals[bucket] >= 0


@given(ledgers, st.data(), as_of_dates)
def test_paying_an_invoice_never_increases_any_bucket(ledger, data, as_of):
    if not ledger:
        return
    index = data.draw(st.integers(0, len(ledger) - 1))
    target = ledger[index]
    open_now = target.open_on(date.max)
    if open_now <= 0:
        return
    amount = data.draw(st.integers(1, int(open_now * 100)).map(lambda c: Decimal(c) / 100))
    paid_on = data.draw(as_of_dates)
    paid = InvoiceFacts(
        target.customer,
        target.number,
        target.invoice_date,
        target.due_date,
        target.amount,
        (*target.reductions, Reduction(paid_on, amount)),
    )
    before = age_invoices(ledger, as_of)
    after = age_invoices([*ledger[:index], paid, *ledger[index + 1 :]], as_of)
    for bucket in BUCKETS:
        assert after.totals[bucket] <= before.totals[bucket]
    # The whole decrease is the payment, if it was received by the as-of date and the invoice
    # was issued by then.
    expected = amount if paid_on <= as_of and target.invoice_date <= as_of else Decimal(0)
    assert before.total - after.total == min(expected, target.open_on(as_of))


@given(invoices(), offsets, offsets)
def test_open_balance_only_falls_once_issued(invoice, a, b):
    d1, d2 = sorted(
        [invoice.invoice_date + timedelta(days=a), invoice.invoice_date + timedelta(days=b)]
    )
    assert 0 <= invoice.open_on(d2) <= invoice.open_on(d1) <= invoice.amount


@given(invoices())
def test_closed_on_is_the_first_day_with_nothing_open(invoice):
    closed = invoice.closed_on()
    if closed is None:
        assert invoice.open_on(date.max) > 0
        return
    assert invoice.open_on(max(closed, invoice.invoice_date)) == 0
    if closed > invoice.invoice_date:
        assert invoice.open_on(closed - timedelta(days=1)) > 0


@settings(max_examples=200)
@given(
    st.integers(0, 10**9).map(lambda c: Decimal(c) / 100),
    st.integers(1, 10**9).map(lambda c: Decimal(c) / 100),
    st.integers(1, 3660),
)
def test_dso_times_sales_gives_back_the_balance(balance, sales, days):
    result = dso(balance, sales, days)
    # Rounding to the cent moves DSO by at most half a cent, i.e. the balance by sales/days/200.
    assert abs(result * sales / days - balance) <= sales / days / 200 + Decimal("1e-20")
