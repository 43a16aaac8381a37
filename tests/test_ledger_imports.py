"""CSV import: every bad row named, nothing written unless all rows are good, re-import safe."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from casemgr.extensions import db
from casemgr.ledger.imports import (
    CsvFormatError,
    ImportRejected,
    UnknownImportKind,
    decode_csv,
    import_csv,
)
from casemgr.ledger.operations import invoice_open_balance
from casemgr.models import Customer, Invoice, Order, Payment

CUSTOMERS = """number,name,credit_limit,terms_days,sales_rep,country,currency
C-100,Acme Tools,25000.00,30,rep,US,usd
C-200,Bolt & Nut Ltd,0,15,,CA,CAD
"""

INVOICES = """customer_number,number,invoice_date,due_date,amount,disputed
C-100,INV-1,2024-01-05,2024-02-04,1200.50,false
C-100,INV-2,2024-02-01,2024-03-02,300.00,true
C-200,INV-3,2024-02-10,2024-02-25,99.99,
"""


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def load(kind: str, text: str):
    result = import_csv(kind, text)
    db.session.commit()
    return result


def rejected(kind: str, text: str) -> list[dict]:
    with pytest.raises(ImportRejected) as info:
        import_csv(kind, text)
    db.session.rollback()
    return [e.as_dict() for e in info.value.errors]


@pytest.fixture
def ledger(ctx):
    load("customers", CUSTOMERS)
    load("invoices", INVOICES)
    return ctx


def test_customers_are_imported_with_their_optional_columns(ctx):
    result = load("customers", CUSTOMERS)
    assert (result.imported, result.created, result.updated) == (2, 2, 0)
    acme = db.session.execute(select(Customer).filter_by(number="C-100")).scalar_one()
    assert acme.name == "Acme Tools"
    assert acme.credit_limit == Decimal("25000.00")
    assert acme.terms_days == 30
    assert (acme.sales_rep, acme.country, acme.currency) == ("rep", "US", "USD")
    bolt = db.session.execute(select(Customer).filter_by(number="C-200")).scalar_one()
    assert bolt.sales_rep is None
    assert bolt.credit_limit == Decimal("0.00")


def test_reimporting_updates_in_place_and_never_duplicates(ledger):
    changed = CUSTOMERS.replace("25000.00", "40000.00").replace("Acme Tools", "Acme Tools Inc")
    result = load("customers", changed)
    assert (result.imported, result.created, result.updated) == (2, 0, 2)
    assert count(Customer) == 2
    acme = db.session.execute(select(Customer).filter_by(number="C-100")).scalar_one()
    db.session.refresh(acme)
    assert acme.credit_limit == Decimal("40000.00")
    assert acme.name == "Acme Tools Inc"

    again = load("invoices", INVOICES)
    assert (again.created, again.updated) == (0, 3)
    assert count(Invoice) == 3


def test_optional_columns_left_out_keep_their_values(ledger):
    load("customers", "number,name,credit_limit,terms_days\nC-100,Acme,1.00,30\n")
    acme = db.session.execute(select(Customer).filter_by(number="C-100")).scalar_one()
    db.session.refresh(acme)
    assert (acme.sales_rep, acme.country) == ("rep", "US")


def test_invoices_are_linked_to_their_customers(ledger):
    inv = db.session.execute(select(Invoice).filter_by(number="INV-2")).scalar_one()
    assert inv.customer.number == "C-100"
    assert inv.disputed is True
    assert inv.amount == Decimal("300.00")
    assert inv.due_date == date(2024, 3, 2)
    assert (
        db.session.execute(select(Invoice).filter_by(number="INV-3")).scalar_one().disputed is False
    )


def test_every_bad_row_is_named_with_its_file_line(ledger):
    text = (
        "customer_number,number,invoice_date,due_date,amount\n"  # line 1
        "C-100,INV-10,2024-03-01,2024-03-31,10.00\n"  # 2: good
        "C-999,INV-11,2024-03-01,2024-03-31,10.00\n"  # 3: unknown customer
        "C-100,INV-12,2024-03-01,2024-03-31,-5.00\n"  # 4: negative
        "C-100,INV-13,01/03/2024,2024-03-31,5.00\n"  # 5: not ISO
        "C-100,INV-14,2024-03-01,2024-02-28,5.00\n"  # 6: due before invoice date
        "C-100,INV-10,2024-03-01,2024-03-31,10.00\n"  # 7: duplicate of line 2
        "\n"  # 8: blank, skipped
        "C-100,INV-15,2024-02-30,2024-03-31,1.005\n"  # 9: no such day, three decimals
        "C-998,INV-16,2024-03-01,2024-03-31,-1\n"  # 10: unknown customer AND negative
    )
    errors = rejected("invoices", text)
    assert errors == [
        {"row": 3, "field": "customer_number", "message": "unknown customer"},
        {"row": 4, "field": "amount", "message": "must not be negative"},
        {"row": 5, "field": "invoice_date", "message": "'01/03/2024' is not a date (YYYY-MM-DD)"},
        {"row": 6, "field": "due_date", "message": "is before the invoice date"},
        {"row": 7, "field": "number", "message": "duplicate of row 2"},
        {"row": 9, "field": "amount", "message": "has more than two decimals"},
        {"row": 9, "field": "invoice_date", "message": "'2024-02-30' is not a date (YYYY-MM-DD)"},
        {"row": 10, "field": "amount", "message": "must not be negative"},
        {"row": 10, "field": "customer_number", "message": "unknown customer"},
    ]
    assert count(Invoice) == 3  # not even the good row 2


def test_missing_columns_are_reported_on_the_header_row(ctx):
    errors = rejected("invoices", "customer_number,number,amount\nC-100,INV-1,5.00\n")
    assert errors == [
        {"row": 1, "field": "due_date", "message": "missing column"},
        {"row": 1, "field": "invoice_date", "message": "missing column"},
    ]


def test_payments_check_methods_invoices_and_duplicates(ledger):
    text = (
        "customer_number,reference,received_date,amount,method,invoice_number\n"
        "C-100,CHK-1,2024-02-20,200.50,check,INV-1\n"  # 2: good
        "C-100,CHK-2,2024-02-20,10.00,bitcoin,INV-1\n"  # 3: unknown method
        "C-100,CHK-3,2024-02-20,10.00,ach,INV-404\n"  # 4: unknown invoice
        "C-100,CHK-4,2024-02-20,10.00,wire,INV-3\n"  # 5: another customer's invoice
        "C-100,CHK-1,2024-02-21,10.00,wire,\n"  # 6: duplicate reference
        "C-200,CHK-1,2024-02-21,0.00,lockbox,\n"  # 7: same reference, other customer: fine, but 0
    )
    errors = rejected("payments", text)
    assert [(e["row"], e["field"]) for e in errors] == [
        (3, "method"),
        (4, "invoice_number"),
        (5, "invoice_number"),
        (6, "reference"),
        (7, "amount"),
    ]
    assert count(Payment) == 0


def test_payments_apply_to_invoices_or_stay_unapplied(ledger):
    text = (
        "customer_number,reference,received_date,amount,method,invoice_number,memo\n"
        "C-100,CHK-1,2024-02-20,200.50,Check,INV-1,extra columns are ignored\n"
        "C-100,WIRE-9,2024-02-21,50.00,wire,,\n"
        "C-200,CC-1,2024-02-21,99.99,credit card,INV-3,\n"
    )
    assert load("payments", text).imported == 3
    inv1 = db.session.execute(select(Invoice).filter_by(number="INV-1")).scalar_one()
    assert invoice_open_balance(inv1) == Decimal("1000.00")
    wire = db.session.execute(select(Payment).filter_by(reference="WIRE-9")).scalar_one()
    assert wire.invoice_id is None
    assert wire.method == "wire"
    assert db.session.execute(select(Payment).filter_by(reference="CC-1")).scalar_one().method == (
        "credit_card"
    )


def test_a_payment_may_not_pay_more_than_the_invoice_but_reimport_is_fine(ledger):
    first = (
        "customer_number,reference,received_date,amount,method,invoice_number\n"
        "C-200,P-1,2024-02-20,60.00,ach,INV-3\n"
    )
    load("payments", first)
    assert load("payments", first).updated == 1  # replaces itself, is not counted twice
    over = first + "C-200,P-2,2024-02-21,40.00,ach,INV-3\n"  # 60 + 40 > 99.99
    errors = rejected("payments", over)
    assert errors == [
        {
            "row": 3,
            "field": "amount",
            "message": "pays more than invoice INV-3 has open (amount 99.99)",
        }
    ]
    assert count(Payment) == 1


def test_an_invoice_cannot_change_customer_or_drop_below_what_was_paid(ledger):
    load(
        "payments",
        "customer_number,reference,received_date,amount,method,invoice_number\n"
        "C-100,P-1,2024-02-20,250.00,ach,INV-2\n",
    )
    text = (
        "customer_number,number,invoice_date,due_date,amount\n"
        "C-200,INV-1,2024-01-05,2024-02-04,1200.50\n"
        "C-100,INV-2,2024-02-01,2024-03-02,200.00\n"
    )
    errors = rejected("invoices", text)
    assert errors == [
        {"row": 2, "field": "number", "message": "invoice belongs to another customer"},
        {"row": 3, "field": "amount", "message": "is less than the 250.00 already applied to it"},
    ]


def test_orders_keep_the_status_the_cases_gave_them(ledger):
    text = "customer_number,number,order_date,amount\nC-100,SO-1,2024-03-01,5000.00\n"
    load("orders", text)
    order = db.session.execute(select(Order).filter_by(number="SO-1")).scalar_one()
    assert order.status == "open"
    order.status = "held"
    db.session.commit()
    load("orders", text.replace("5000.00", "5500.00"))
    db.session.refresh(order)
    assert (order.status, order.amount) == ("held", Decimal("5500.00"))
    assert count(Order) == 1


def test_header_case_spaces_bom_and_crlf_are_accepted(ctx):
    data = "\ufeffNumber , Name,Credit_Limit,terms_days\r\nC-1,One,10.00,30\r\n\r\n".encode()
    assert load("customers", decode_csv(data)).imported == 1


def test_a_header_only_file_imports_nothing(ctx):
    assert load("orders", "customer_number,number,order_date,amount\n").imported == 0


@pytest.mark.parametrize(
    "body",
    [b"", b"   \n", b"\xff\xfe\x00n\x00u\x00m", "número".encode("latin-1"), b"a,b\x00c\n"],
)
def test_bodies_that_are_not_csv_text(body):
    with pytest.raises(CsvFormatError):
        decode_csv(body)


def test_unknown_kind(ctx):
    with pytest.raises(UnknownImportKind):
        import_csv("refunds", "a,b\n")


def _invoice_file(rows: int, bad_row: int | None = None) -> str:
    lines = ["customer_number,number,invoice_date,due_date,amount"]
    for n in range(1, rows + 1):
        day = "2024-13-01" if n == bad_row else "2024-01-01"
        lines.append(f"C-{n % 2 + 1}00,BULK-{n:05d},{day},2024-01-31,{n}.25")
    return "\n".join(lines) + "\n"


def test_a_file_failing_on_row_2000_leaves_the_database_untouched(ledger):
    before = (count(Invoice), count(Customer))
    text = _invoice_file(3000, bad_row=1999)  # data row 1,999 is file line 2,000
    errors = rejected("invoices", text)
    assert errors == [
        {"row": 2000, "field": "invoice_date", "message": "'2024-13-01' is not a date (YYYY-MM-DD)"}
    ]
    assert (count(Invoice), count(Customer)) == before
    assert db.session.execute(select(Invoice).filter_by(number="BULK-00001")).first() is None


def test_ten_thousand_rows_import_in_a_few_seconds(ledger):
    text = _invoice_file(10_000)
    started = time.perf_counter()
    result = load("invoices", text)
    elapsed = time.perf_counter() - started
    assert result.created == 10_000
    assert count(Invoice) == 10_003
    assert elapsed < 5, f"10k invoices took {elapsed:.1f}s"
    started = time.perf_counter()
    assert load("invoices", text).updated == 10_000
    assert time.perf_counter() - started < 5
    assert count(Invoice) == 10_003


def test_a_row_with_more_values_than_columns_is_refused(ledger):
    text = (
        "customer_number,number,order_date,amount\n"
        "C-100,SO-1,2024-03-01,12,50\n"  # a comma decimal: would import 12.00
        "C-100,SO-2,2024-03-01,12.50,\n"  # a trailing empty value is harmless
    )
    assert rejected("orders", text) == [
        {
            "row": 2,
            "field": None,
            "message": "has more values than the header has columns (5 for 4)",
        }
    ]
    assert load("orders", text.replace("12,50", "12.50").replace("SO-1", "SO-3")).imported == 2
