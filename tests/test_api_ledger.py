"""The ledger's API contract (API.md, "Ledger"): shapes, money as strings, status codes."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from casemgr.extensions import db
from casemgr.models import Customer, Invoice

CSV = {"Content-Type": "text/csv"}

CUSTOMERS = "number,name,credit_limit,terms_days,sales_rep\nC-100,Acme,1000.00,30,rep\n"
INVOICES = (
    "customer_number,number,invoice_date,due_date,amount\n"
    "C-100,INV-1,2024-01-01,2024-01-31,300.00\n"
    "C-100,INV-2,2024-03-01,2024-03-31,200.50\n"
)
PAYMENTS = (
    "customer_number,reference,received_date,amount,method,invoice_number\n"
    "C-100,CHK-1,2024-02-10,100.00,check,INV-1\n"
)
ORDERS = "customer_number,number,order_date,amount\nC-100,SO-1,2024-03-05,650.25\n"


def post_csv(api, who, kind, text, headers=CSV):
    return api.as_(who).post(f"/api/v1/imports/{kind}", data=text.encode(), headers=headers)


@pytest.fixture
def loaded(api):
    for kind, text in (
        ("customers", CUSTOMERS),
        ("invoices", INVOICES),
        ("payments", PAYMENTS),
        ("orders", ORDERS),
    ):
        resp = post_csv(api, "spec", kind, text)
        assert resp.status_code == 200, resp.get_json()
    return api


def count(app, model) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.parametrize("who", ["spec", "mgr", "ctrl", "admin"])
def test_importers_may_import(api, who):
    resp = post_csv(api, who, "customers", CUSTOMERS)
    assert resp.status_code == 200
    assert resp.get_json() == {"imported": 1, "created": 1, "updated": 0}
    assert post_csv(api, who, "customers", CUSTOMERS).get_json()["imported"] == 1
    assert count(api.app, Customer) == 1


@pytest.mark.parametrize("who", ["rep", "owner"])
def test_others_may_not_import(api, who):
    resp = post_csv(api, who, "customers", CUSTOMERS)
    assert resp.status_code == 403
    assert "error" in resp.get_json()
    assert count(api.app, Customer) == 0


def test_no_or_bad_token_is_401(api):
    assert api.post("/api/v1/imports/customers", data=CUSTOMERS, headers=CSV).status_code == 401
    bad = {**CSV, "Authorization": "Bearer nope"}
    assert api.post("/api/v1/imports/customers", data=CUSTOMERS, headers=bad).status_code == 401
    assert api.get("/api/v1/customers/C-100").status_code == 401
    assert api.get("/api/v1/reports/aging").status_code == 401
    assert api.get("/api/v1/reports/dso?start=2024-01-01&end=2024-01-31").status_code == 401


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"number": "C-1"}', {"Content-Type": "application/json"}),
        (b"number=C-1", {"Content-Type": "application/x-www-form-urlencoded"}),
        (b"\x89PNG\r\n\x1a\n\x00\x00", CSV),
        ("number,name\nC-1,Müller\n".encode("latin-1"), CSV),
        (b"", CSV),
    ],
)
def test_a_body_that_is_not_csv_is_400(api, body, headers):
    resp = api.as_("spec").post("/api/v1/imports/customers", data=body, headers=headers)
    assert resp.status_code == 400
    assert resp.get_json()["error"]


def test_status_order_400_then_404_then_403(api):
    # A bad body wins over an unknown kind, and an unknown kind over a missing role.
    resp = api.as_("rep").post("/api/v1/imports/refunds", data=b"\x00", headers=CSV)
    assert resp.status_code == 400
    assert post_csv(api, "rep", "refunds", CUSTOMERS).status_code == 404
    assert post_csv(api, "spec", "refunds", CUSTOMERS).status_code == 404


def test_bad_rows_are_422_with_every_row_and_nothing_imported(api):
    post_csv(api, "spec", "customers", CUSTOMERS)
    text = (
        "customer_number,number,invoice_date,due_date,amount\n"
        "C-100,INV-1,2024-01-01,2024-01-31,300.00\n"
        "C-999,INV-2,2024-01-01,2024-01-31,1.00\n"
        "C-100,INV-3,2024-01-01,2023-12-31,-1\n"
    )
    resp = post_csv(api, "spec", "invoices", text)
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["error"] == "2 bad rows; nothing was imported"
    assert body["rows"] == [
        {"row": 3, "field": "customer_number", "message": "unknown customer"},
        {"row": 4, "field": "amount", "message": "must not be negative"},
        {"row": 4, "field": "due_date", "message": "is before the invoice date"},
    ]
    assert count(api.app, Invoice) == 0


def test_a_file_failing_on_row_2000_imports_nothing_over_the_api(api):
    post_csv(api, "spec", "customers", CUSTOMERS)
    lines = ["customer_number,number,invoice_date,due_date,amount"]
    lines += [f"C-100,N-{n},2024-01-01,2024-01-31,1.00" for n in range(1, 2500)]
    lines[1999] = "C-100,N-1999,2024-01-01,2024-01-31,12,50"  # file line 2,000: comma decimal
    resp = post_csv(api, "spec", "invoices", "\n".join(lines))
    assert resp.status_code == 422
    assert resp.get_json()["rows"] == [
        {
            "row": 2000,
            "field": None,
            "message": "has more values than the header has columns (6 for 5)",
        }
    ]
    assert count(api.app, Invoice) == 0


def test_customer_standing(loaded):
    resp = loaded.as_("rep").get("/api/v1/customers/C-100?as_of=2024-04-15")
    assert resp.status_code == 200
    body = resp.get_json()
    # Open: INV-1 300.00 - 100.00 paid = 200.00, INV-2 200.50: 400.50. Order 650.25.
    expected = {
        "number": "C-100",
        "name": "Acme",
        "credit_limit": "1000.00",
        "terms_days": 30,
        "on_hold": False,
        "open_balance": "400.50",
        "open_orders": "650.25",
        "exposure": "1050.75",
        "available_credit": "-50.75",
        "average_days_late": None,
    }
    assert {k: body[k] for k in expected} == expected
    assert body["aging"]["61-90"] == "200.00"  # INV-1, due 1-31: 75 days on 4-15
    assert body["aging"]["1-30"] == "200.50"


def test_average_days_late_is_a_two_decimal_string(loaded):
    more = "customer_number,reference,received_date,amount,method,invoice_number\n"
    more += "C-100,CHK-2,2024-02-13,200.00,ach,INV-1\n"  # INV-1 due 1-31 fully paid 2-13
    assert post_csv(loaded, "spec", "payments", more).status_code == 200
    body = loaded.as_("spec").get("/api/v1/customers/C-100").get_json()
    assert body["average_days_late"] == "13.00"
    assert body["open_balance"] == "200.50"


def test_customer_errors(loaded):
    assert loaded.as_("spec").get("/api/v1/customers/C-404").status_code == 404
    resp = loaded.as_("spec").get("/api/v1/customers/C-100?as_of=15/04/2024")
    assert resp.status_code == 422
    assert list(resp.get_json()["errors"]) == ["as_of"]
    # 404 wins over 422
    assert loaded.as_("spec").get("/api/v1/customers/C-404?as_of=x").status_code == 404


def test_aging_report(loaded):
    resp = loaded.as_("mgr").get("/api/v1/reports/aging?as_of=2024-02-09")
    assert resp.status_code == 200
    body = resp.get_json()
    # On 2-09 the 100.00 payment (2-10) had not arrived: INV-1 300.00, 9 days past due.
    # INV-2 was not issued yet.
    assert body["as_of"] == "2024-02-09"
    assert body["totals"] == {
        "current": "0.00",
        "1-30": "300.00",
        "31-60": "0.00",
        "61-90": "0.00",
        "91-120": "0.00",
        "120+": "0.00",
    }
    assert body["customers"] == [
        {
            "number": "C-100",
            "name": "Acme",
            "current": "0.00",
            "1-30": "300.00",
            "31-60": "0.00",
            "61-90": "0.00",
            "91-120": "0.00",
            "120+": "0.00",
            "total": "300.00",
        }
    ]
    later = loaded.as_("mgr").get("/api/v1/reports/aging?as_of=2024-02-10").get_json()
    assert later["totals"]["1-30"] == "200.00"


def test_aging_defaults_to_today_and_validates(loaded):
    body = loaded.as_("spec").get("/api/v1/reports/aging").get_json()
    assert body["as_of"] == date.today().isoformat()
    assert body["totals"]["120+"] == "400.50"
    for bad in ("2024-02-30", "yesterday", "2024-W01-1"):
        resp = loaded.as_("spec").get(f"/api/v1/reports/aging?as_of={bad}")
        assert resp.status_code == 422, bad
        assert resp.get_json()["errors"]["as_of"], bad


def test_dso_report(loaded):
    resp = loaded.as_("ctrl").get("/api/v1/reports/dso?start=2024-01-01&end=2024-03-31")
    assert resp.status_code == 200
    body = resp.get_json()
    # AR at 3-31: 200.00 + 200.50 = 400.50; sales 300.00 + 200.50 = 500.50; 91 days.
    # 400.50 / 500.50 x 91 = 72.8181... -> 72.82
    assert body == {
        "start": "2024-01-01",
        "end": "2024-03-31",
        "dso": 72.82,
        "ar_balance": "400.50",
        "credit_sales": "500.50",
        "days": 91,
    }


def test_dso_validation(loaded):
    resp = loaded.as_("spec").get("/api/v1/reports/dso?end=2024-03-31")
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["error"]
    assert list(body["errors"]) == ["start"]
    resp = loaded.as_("spec").get("/api/v1/reports/dso?start=2024-03-31&end=2024-01-01")
    assert resp.status_code == 422
    assert list(resp.get_json()["errors"]) == ["end"]
    resp = loaded.as_("spec").get("/api/v1/reports/dso?start=2023-01-01&end=2023-01-31")
    assert resp.status_code == 200
    assert resp.get_json()["dso"] is None  # no credit sales in the span


def post_csv_bytes(api, body, headers):
    return api.as_("spec").post("/api/v1/imports/customers", data=body, headers=headers)


def test_a_declared_charset_is_honoured(api):
    body = "number,name,credit_limit,terms_days\nC-7,Müller GmbH,10.00,30\n".encode("latin-1")
    headers = {"Content-Type": "text/csv; charset=ISO-8859-1"}
    assert post_csv_bytes(api, body, headers).status_code == 200
    assert api.as_("spec").get("/api/v1/customers/C-7").get_json()["name"] == "Müller GmbH"
    assert (
        post_csv_bytes(api, body, {"Content-Type": "text/csv; charset=klingon"}).status_code == 400
    )


def test_customer_numbers_may_contain_slashes(api):
    post_csv(api, "spec", "customers", "number,name,credit_limit,terms_days\nAB/12,Slash,1,30\n")
    resp = api.as_("spec").get("/api/v1/customers/AB/12")
    assert resp.status_code == 200
    assert resp.get_json()["number"] == "AB/12"


def test_aging_for_one_sales_rep(loaded):
    other = "number,name,credit_limit,terms_days,sales_rep\nC-200,Bolt,10.00,30,rep2\n"
    post_csv(loaded, "spec", "customers", other)
    invoice = (
        "customer_number,number,invoice_date,due_date,amount\n"
        "C-200,B-1,2024-01-01,2024-01-31,7.00\n"
    )
    post_csv(loaded, "spec", "invoices", invoice)
    everyone = loaded.as_("mgr").get("/api/v1/reports/aging?as_of=2024-02-09").get_json()
    assert [c["number"] for c in everyone["customers"]] == ["C-100", "C-200"]
    assert everyone["totals"]["1-30"] == "307.00"
    asked = loaded.as_("mgr").get("/api/v1/reports/aging?as_of=2024-02-09&sales_rep=rep2")
    assert [c["number"] for c in asked.get_json()["customers"]] == ["C-200"]
    # A sales rep sees only their own customers, whatever they ask for.
    for query in ("", "&sales_rep=rep2"):
        mine = loaded.as_("rep").get(f"/api/v1/reports/aging?as_of=2024-02-09{query}").get_json()
        assert [c["number"] for c in mine["customers"]] == ["C-100"]
        assert mine["totals"]["1-30"] == "300.00"


def test_a_sales_rep_reads_only_their_own_customers(loaded):
    other = "number,name,credit_limit,terms_days,sales_rep\nC-200,Bolt,10.00,30,rep2\n"
    post_csv(loaded, "spec", "customers", other)
    assert loaded.as_("rep").get("/api/v1/customers/C-100").status_code == 200
    assert loaded.as_("rep").get("/api/v1/customers/C-200").status_code == 403
    assert loaded.as_("owner").get("/api/v1/customers/C-100").status_code == 403
    assert loaded.as_("owner").get("/api/v1/customers/C-404").status_code == 404  # 404 first
    assert loaded.as_("spec").get("/api/v1/customers/C-200").status_code == 200


def test_the_process_owner_reads_reports(loaded):
    resp = loaded.as_("owner").get("/api/v1/reports/aging?as_of=2024-02-09")
    assert resp.get_json()["totals"]["1-30"] == "300.00"
    resp = loaded.as_("owner").get("/api/v1/reports/dso?start=2024-01-01&end=2024-03-31")
    assert resp.status_code == 200


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("number,name,credit_limit,terms_days\nC-1,X,1e400,30\n", 422),
        ("number,name,credit_limit,terms_days\nC-1,X,NaN,30\n", 422),
        ("number,name,credit_limit,terms_days\nC-1,X,99999999999999999999,1\n", 422),
        ("number,name,credit_limit,terms_days\nC-1,X,1,99999999999999999999\n", 422),
        ("number,name,credit_limit,terms_days\nC-1,X," + "9" * 40 + ".5,1\n", 422),
        ("number,name,credit_limit,terms_days\n" + "C" * 41 + ",X,1,30\n", 422),
        ('number,name,credit_limit,terms_days\nC-1,"unterminated,1,30\n', 422),
        ("number,name,credit_limit,terms_days\nC-1,X,1,30,,,,\n", 200),
        (",,,\n,,,\n", 400),
    ],
)
def test_nasty_csv_is_answered_without_a_500(api, text, status):
    resp = post_csv(api, "spec", "customers", text)
    assert resp.status_code == status, resp.get_json()
    if status != 200:
        assert resp.get_json()["error"]
    assert count(api.app, Customer) == (1 if status == 200 else 0)


def test_a_field_over_the_csv_limit_is_400(api):
    resp = post_csv(api, "spec", "customers", "number,name\n" + "x" * 200_000 + ",y\n")
    assert resp.status_code == 400


@pytest.mark.parametrize("as_of", ["0000-01-01", "9999-99-99", "2024-1-1", "%00", "9999-12-31"])
def test_odd_dates_never_500(loaded, as_of):
    for path in ("/api/v1/reports/aging", "/api/v1/customers/C-100"):
        resp = loaded.as_("spec").get(f"{path}?as_of={as_of}")
        assert resp.status_code in (200, 422), (path, as_of)
    resp = loaded.as_("spec").get(f"/api/v1/reports/dso?start=0001-01-01&end={as_of}")
    assert resp.status_code in (200, 422)
