"""The IBM AR sample, converted and imported, against figures computed here straight from the
raw CSV with csv + Decimal (none of the ledger's own functions are used for the expectations).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from casemgr.extensions import db
from casemgr.ledger import ibm_sample
from casemgr.ledger.aging import aging_report
from casemgr.ledger.commands import ledger_cli
from casemgr.ledger.imports import import_csv
from casemgr.ledger.metrics import customer_summary, dso_report

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "ar"
SAMPLE = CORPUS / "WA_Fn-UseC_-Accounts-Receivable.csv"
US_SAMPLE = CORPUS / "WA_Fn-UseC_-Accounts-Receivable.us-dates.csv"

pytestmark = pytest.mark.skipif(
    not SAMPLE.exists(), reason="shared/corpus/ar is not beside the repo"
)

MONTH_ENDS = [date(2012, 6, 30), date(2012, 12, 31), date(2013, 6, 30), date(2013, 11, 30)]
CENT = Decimal("0.01")


def raw_rows() -> list[dict]:
    """The sample as it is on disk: DD/MM/YYYY dates, amounts as text."""
    with open(SAMPLE, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for col in ("InvoiceDate", "DueDate", "SettledDate"):
            row[col] = datetime.strptime(row[col], "%d/%m/%Y").date()
        row["InvoiceAmount"] = Decimal(row["InvoiceAmount"])
    return rows


def expected_bucket(days_past_due: int) -> str:
    # Upper bounds of each bucket, the last open-ended.
    for upper, name in (
        (0, "current"),
        (30, "1-30"),
        (60, "31-60"),
        (90, "61-90"),
        (120, "91-120"),
    ):
        if days_past_due <= upper:
            return name
    return "120+"


def expected_aging(rows: list[dict], as_of: date):
    """Open at the end of as_of = issued on or before it and settled after it."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    per_customer: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        if row["InvoiceDate"] <= as_of < row["SettledDate"]:
            bucket = expected_bucket((as_of - row["DueDate"]).days)
            totals[bucket] += row["InvoiceAmount"]
            per_customer[row["customerID"]][bucket] += row["InvoiceAmount"]
    return totals, per_customer


@pytest.fixture
def sample_ledger(ctx, tmp_path):
    counts = ibm_sample.convert(SAMPLE, tmp_path / "out", "dmy")
    assert counts == {"customers": 100, "invoices": 2466, "payments": 2466}
    for kind in ("customers", "invoices", "payments"):
        import_csv(kind, (tmp_path / "out" / f"{kind}.csv").read_text())
    db.session.commit()
    return raw_rows()


@pytest.mark.parametrize("as_of", MONTH_ENDS)
def test_aging_at_month_ends_matches_the_raw_csv(sample_ledger, as_of):
    totals, per_customer = expected_aging(sample_ledger, as_of)
    report = aging_report(as_of)
    assert sum(totals.values()) > 0, "the month end should have open invoices"
    for bucket, amount in report.totals.items():
        assert amount == totals.get(bucket, Decimal("0")), bucket
    assert set(report.customers) == set(per_customer)
    for number, buckets in report.customers.items():
        for bucket, amount in buckets.items():
            assert amount == per_customer[number].get(bucket, Decimal("0")), (number, bucket)


def test_some_month_end_has_past_due_invoices(sample_ledger):
    # Otherwise the comparison above would only ever see the "current" bucket.
    totals, _ = expected_aging(sample_ledger, date(2013, 6, 30))
    assert totals["1-30"] > 0
    report = aging_report(date(2013, 6, 30))
    assert report.totals["1-30"] == totals["1-30"]


@pytest.mark.parametrize(
    ("start", "end"),
    [(date(2013, 1, 1), date(2013, 6, 30)), (date(2012, 1, 1), date(2012, 12, 31))],
)
def test_dso_matches_the_raw_csv(sample_ledger, start, end):
    open_at_end = sum(
        r["InvoiceAmount"] for r in sample_ledger if r["InvoiceDate"] <= end < r["SettledDate"]
    )
    sales = sum(r["InvoiceAmount"] for r in sample_ledger if start <= r["InvoiceDate"] <= end)
    days = (end - start).days + 1
    expected = (open_at_end / sales * days).quantize(CENT, rounding=ROUND_HALF_UP)
    result = dso_report(start, end)
    assert (result.ar_balance, result.credit_sales, result.days) == (open_at_end, sales, days)
    assert result.dso == expected


def test_average_days_late_matches_the_settled_dates_and_the_days_late_column(sample_ledger):
    by_customer: dict[str, list[dict]] = defaultdict(list)
    for row in sample_ledger:
        by_customer[row["customerID"]].append(row)
    assert len(by_customer) == 100
    for number, rows in by_customer.items():
        from_dates = [max(0, (r["SettledDate"] - r["DueDate"]).days) for r in rows]
        from_column = [int(r["DaysLate"]) for r in rows]
        assert from_dates == from_column
        expected = (Decimal(sum(from_column)) / len(rows)).quantize(CENT, rounding=ROUND_HALF_UP)
        summary = customer_summary(number, date(2014, 12, 31))
        assert summary.average_days_late == expected, number
        assert summary.open_balance == Decimal("0.00")


def test_a_customer_mid_history(sample_ledger):
    as_of = date(2013, 6, 30)
    number = "3993-QUNVJ"
    mine = [r for r in sample_ledger if r["customerID"] == number]
    open_amount = sum(
        r["InvoiceAmount"] for r in mine if r["InvoiceDate"] <= as_of < r["SettledDate"]
    )
    paid = [
        max(0, (r["SettledDate"] - r["DueDate"]).days) for r in mine if r["SettledDate"] <= as_of
    ]
    summary = customer_summary(number, as_of)
    assert summary.open_balance == open_amount
    assert summary.exposure == open_amount
    assert summary.available_credit == Decimal("5000.00") - open_amount
    assert summary.average_days_late == (Decimal(sum(paid)) / len(paid)).quantize(
        CENT, rounding=ROUND_HALF_UP
    )


def test_the_two_published_copies_convert_to_the_same_ledger(tmp_path):
    ibm_sample.convert(SAMPLE, tmp_path / "dmy", "dmy")
    ibm_sample.convert(US_SAMPLE, tmp_path / "mdy", "mdy")
    for name in ("customers.csv", "invoices.csv", "payments.csv"):
        main = (tmp_path / "dmy" / name).read_text().splitlines()
        us = (tmp_path / "mdy" / name).read_text().splitlines()
        assert main[0] == us[0]
        assert sorted(main[1:]) == sorted(us[1:]), name


def test_reading_day_first_dates_as_month_first_is_refused():
    # Read month-first, the day-first file has "months" above 12 on its first data row.
    with pytest.raises(ValueError, match="line 2"):
        ibm_sample.read_sample(SAMPLE, "mdy")


def test_converted_files_are_canonical(tmp_path):
    ibm_sample.convert(SAMPLE, tmp_path, "dmy")
    with open(tmp_path / "customers.csv", newline="") as fh:
        customers = list(csv.DictReader(fh))
    assert customers[0].keys() == {"number", "name", "credit_limit", "terms_days", "country"}
    first = next(c for c in customers if c["number"] == "3993-QUNVJ")
    assert first == {
        "number": "3993-QUNVJ",
        "name": "Customer 3993-QUNVJ",
        "credit_limit": "5000.00",
        "terms_days": "30",
        "country": "770",
    }
    with open(tmp_path / "invoices.csv", newline="") as fh:
        invoices = list(csv.DictReader(fh))
    assert invoices[2] == {
        "customer_number": "1604-LIFKX",
        "number": "5928070131",
        "invoice_date": "2012-01-03",
        "due_date": "2012-02-02",
        "amount": "97.60",
        "disputed": "false",
    }
    assert sum(i["disputed"] == "true" for i in invoices) == 561
    with open(tmp_path / "payments.csv", newline="") as fh:
        payments = list(csv.DictReader(fh))
    assert payments[2] == {
        "customer_number": "1604-LIFKX",
        "reference": "PAY-5928070131",
        "received_date": "2012-02-25",
        "amount": "97.60",
        "method": "check",
        "invoice_number": "5928070131",
    }


def test_the_cli_converts_and_imports(app, tmp_path):
    runner = app.test_cli_runner()
    out = tmp_path / "out"
    result = runner.invoke(ledger_cli, ["convert-ibm-sample", str(SAMPLE), str(out)])
    assert result.exit_code == 0, result.output
    assert "invoices.csv: 2466 rows" in result.output
    for kind, n in (("customers", 100), ("invoices", 2466), ("payments", 2466)):
        result = runner.invoke(ledger_cli, ["import", kind, str(out / f"{kind}.csv")])
        assert result.exit_code == 0, result.output
        assert f"imported {n} {kind} ({n} new, 0 updated)" in result.output
    with app.app_context():
        assert aging_report(date(2013, 6, 30)).total > 0


def test_the_cli_reports_bad_rows_and_imports_nothing(app, tmp_path):
    bad = tmp_path / "orders.csv"
    bad.write_text("customer_number,number,order_date,amount\nNOPE,SO-1,2024-01-01,5.00\n")
    result = app.test_cli_runner().invoke(ledger_cli, ["import", "orders", str(bad)])
    assert result.exit_code == 1
    assert "row 2, customer_number: unknown customer" in result.output
    assert "nothing was imported" in result.output
