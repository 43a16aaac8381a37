"""The customer page, the aging report with its drill-down and CSV, and DSO, as people read
them: the figures on the page for a small ledger built here, and who may see what."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest

from casemgr.extensions import db
from casemgr.models import AccountNote, Customer, Invoice, Order, Payment, PromiseToPay
from casemgr.web.reports import month_ends
from tests.test_api_payments import waiting_case
from tests.web_client import client_for

PASSWORD = "correct-horse-1"
TODAY = date.today()


def days(n: int) -> date:
    return TODAY - timedelta(days=n)


def build_ledger(app) -> None:
    """C-100 (rep's): 70 days past due 1,000.00; 2,000.00 open of 2,500.00 20 days past due;
    a disputed 400.00 15 days past due; a current 1,234.56; one invoice paid 10 days late;
    an open order of 500.00. C-200 belongs to another rep and owes 750.00, 10 days late."""
    with app.app_context():
        acme = Customer(
            number="C-100",
            name="Acme Supply",
            address="1 Main Street\nSpringfield, IL 62701",
            credit_limit=Decimal("10000.00"),
            terms_days=30,
            sales_rep="rep",
            on_hold=True,
            hold_reason="Two broken promises",
        )
        other = Customer(
            number="C-200", name="Other Co", credit_limit=Decimal("5000.00"), sales_rep="another"
        )
        db.session.add_all([acme, other])
        invoices = {
            "INV-1": (acme, 100, "1000.00", False),
            "INV-2": (acme, 50, "2500.00", False),
            "INV-3": (acme, 10, "1234.56", False),
            "INV-4": (acme, 200, "300.00", False),
            "INV-5": (acme, 45, "400.00", True),
            "INV-9": (other, 40, "750.00", False),
        }
        rows = {}
        for number, (customer, age, amount, disputed) in invoices.items():
            rows[number] = Invoice(
                customer=customer,
                number=number,
                invoice_date=days(age),
                due_date=days(age) + timedelta(days=30),
                amount=Decimal(amount),
                disputed=disputed,
            )
        db.session.add_all(rows.values())
        db.session.add_all(
            [
                Payment(
                    customer=acme,
                    reference="CHK-1",
                    received_date=days(50 - 30 - 10),
                    amount=Decimal("500.00"),
                    method="check",
                    invoice=rows["INV-2"],
                ),
                Payment(
                    customer=acme,
                    reference="CHK-0",
                    received_date=days(160),
                    amount=Decimal("300.00"),
                    method="wire",
                    invoice=rows["INV-4"],
                ),
                Order(customer=acme, number="SO-1", order_date=days(2), amount=Decimal("500.00")),
                PromiseToPay(
                    customer=acme,
                    amount=Decimal("750.00"),
                    promised_date=days(5),
                    status="broken",
                ),
                AccountNote(
                    customer=acme,
                    author="spec",
                    text="Call only the AP manager, never the owner.",
                    special_handling=True,
                ),
                AccountNote(customer=acme, author="spec", text="Left a voicemail."),
            ]
        )
        db.session.commit()


@pytest.fixture
def ledger(app):
    build_ledger(app)
    return app


def special_notice(page: str) -> str:
    return page[page.index('data-testid="special-handling"') :].split("</div>")[0]


def count(app, model) -> int:
    with app.app_context():
        return db.session.execute(db.select(db.func.count()).select_from(model)).scalar_one()


def shown(page: str, name: str) -> str:
    """The text inside the element with data-testid=name (tags stripped, spaces squeezed)."""
    match = re.search(rf'data-testid="{re.escape(name)}"[^>]*>(.*?)</(dd|td|th|div|p|table)>',
                      page, re.S)  # fmt: skip
    assert match, f"no {name} on the page"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


# --- the customer page ----------------------------------------------------------------------


def test_the_customer_page_shows_the_standing_a_collector_reads(ledger):
    page = client_for(ledger, "spec").get("/customers/C-100").get_data(as_text=True)
    assert shown(page, "open-balance") == "4,634.56"
    assert shown(page, "exposure") == "5,134.56"
    assert shown(page, "available-credit") == "4,865.44"
    assert shown(page, "credit-limit") == "10,000.00 USD"
    assert shown(page, "past-due") == "3,400.00 (oldest 70 days)"
    assert shown(page, "average-days-late") == "10.00"
    assert "on hold" in shown(page, "holds") and "Two broken promises" in page
    assert "Net 30" in page
    aging = page[page.index('data-testid="customer-aging"') :]
    cells = re.findall(r'<td class="num">([^<]*)</td>', aging)[:6]
    assert cells == ["1,234.56", "2,400.00", "0.00", "1,000.00", "0.00", "0.00"]


def test_the_customer_page_lists_open_invoices_payments_promises_and_notes(ledger):
    page = client_for(ledger, "spec").get("/customers/C-100").get_data(as_text=True)
    invoices = page[page.index('data-testid="open-invoices"') :]
    invoices = invoices[: invoices.index("</table>")]
    assert re.findall(r"<td>(INV-\d)</td>", invoices) == ["INV-1", "INV-2", "INV-5", "INV-3"]
    assert "INV-4" not in invoices  # paid
    row_2 = invoices[invoices.index("INV-2") :].split("</tr>")[0]
    assert "2,500.00" in row_2 and "2,000.00" in row_2 and ">20<" in row_2
    row_5 = invoices[invoices.index("INV-5") :].split("</tr>")[0]
    assert "disputed" in row_5
    payments = page[page.index('data-testid="payments"') :].split("</table>")[0]
    assert payments.index("CHK-1") < payments.index("CHK-0")  # newest first
    assert "Wire" in payments and "on account" not in payments
    promises = page[page.index('data-testid="promises"') :].split("</table>")[0]
    assert "750.00" in promises and "broken" in promises and days(5).isoformat() in promises
    special = special_notice(page)
    assert "Call only the AP manager" in special and "voicemail" not in special
    assert page.index('data-testid="special-handling"') < page.index('data-testid="standing"')


def test_notes_are_escaped_and_added_by_the_ar_team_only(ledger):
    spec = client_for(ledger, "spec")
    response = spec.post(
        "/customers/C-100/notes",
        data={"text": "<script>alert(1)</script> disputes everything", "special_handling": "y"},
    )
    assert response.status_code == 302
    page = spec.get("/customers/C-100").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; disputes everything" in page
    assert "<script>alert(1)" not in page
    assert "disputes everything" in special_notice(page)
    assert spec.post("/customers/C-100/notes", data={"text": "  "}).status_code == 422
    rep = client_for(ledger, "rep")
    assert rep.post("/customers/C-100/notes", data={"text": "hi"}).status_code == 403
    assert 'action="/customers/C-100/notes' not in rep.get("/customers/C-100").get_data(
        as_text=True
    )
    assert count(ledger, AccountNote) == 3


def test_posting_a_payment_from_the_page_lowers_the_balance_and_says_what_it_ended(ledger):
    spec = client_for(ledger, "spec")
    response = spec.post(
        "/customers/C-100/payments",
        data={
            "amount": "1,000.00",
            "received_date": TODAY.isoformat(),
            "method": "ach",
            "reference": "ACH-77",
            "invoice_number": "INV-1",
        },
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "Payment of 1,000.00 posted. It ended no case." in page
    assert shown(page, "open-balance") == "3,634.56"
    assert "ACH-77" in page
    again = spec.post(
        "/customers/C-100/payments",
        data={"amount": "5.00", "method": "ach", "reference": "ACH-77"},
    )
    assert again.status_code == 409 and "already posted" in again.get_data(as_text=True)


def test_a_payment_that_clears_the_account_ends_the_case_waiting_for_it(ledger):
    case_id = waiting_case(ledger, "C-200")
    page = client_for(ledger, "spec").post(
        "/customers/C-200/payments",
        data={"amount": "750.00", "method": "wire", "invoice_number": "INV-9"},
        follow_redirects=True,
    )
    text = page.get_data(as_text=True)
    assert (
        f"Payment of 750.00 posted. The account is now clear. "
        f"It ended 1 case waiting for payment (#{case_id})."
    ) in text
    assert shown(text, "open-balance") == "0.00"


def test_a_bad_payment_is_shown_on_the_form_and_nothing_is_posted(ledger):
    spec = client_for(ledger, "spec")
    response = spec.post(
        "/customers/C-100/payments",
        data={"amount": "99999.00", "method": "check", "invoice_number": "INV-3",
              "received_date": (TODAY + timedelta(days=3)).isoformat()},
    )  # fmt: skip
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "99,999.00 is more than invoice INV-3 has open (1,234.56)." in page
    assert "A payment cannot be received in the future." in page
    assert 'value="99999.00"' in page
    assert count(ledger, Payment) == 2


def test_only_the_ar_team_posts_payments(ledger):
    rep = client_for(ledger, "rep")
    data = {"amount": "10.00", "method": "check"}
    assert rep.post("/customers/C-100/payments", data=data).status_code == 403
    page = rep.get("/customers/C-100").get_data(as_text=True)
    assert "Post a payment" not in page and shown(page, "open-balance") == "4,634.56"
    assert count(ledger, Payment) == 2


def test_who_reads_a_customer_is_unchanged(ledger):
    rep = client_for(ledger, "rep")
    assert rep.get("/customers/C-100").status_code == 200
    assert rep.get("/customers/C-200").status_code == 403
    assert rep.post("/customers/C-200/payments", data={}).status_code == 403
    assert client_for(ledger, "owner").get("/customers/C-100").status_code == 403
    assert client_for(ledger, "spec").get("/customers/C-999").status_code == 404


# --- aging ----------------------------------------------------------------------------------


def aging_totals(page: str) -> dict[str, str]:
    footer = page[page.index('data-testid="aging-totals"') :].split("</tr>")[0]
    return dict(re.findall(r'data-bucket="([^"]+)">([^<]*)<', footer))


def test_the_aging_report_totals_each_bucket_and_customer(ledger):
    page = client_for(ledger, "mgr").get("/reports/aging").get_data(as_text=True)
    assert aging_totals(page) == {
        "current": "1,234.56",
        "1-30": "3,150.00",
        "31-60": "0.00",
        "61-90": "1,000.00",
        "91-120": "0.00",
        "120+": "0.00",
        "total": "5,384.56",
    }
    row = page[page.index('data-customer="C-100"') :].split("</tr>")[0]
    assert "Acme Supply" in row and "<strong>4,634.56</strong>" in row
    link = f"/reports/aging/invoices?as_of={TODAY}&amp;customer=C-100&amp;bucket=1-30"
    assert f'href="{link}">2,400.00</a>' in row


def test_an_earlier_date_ages_the_ledger_as_it_was(ledger):
    as_of = days(30)
    page = client_for(ledger, "mgr").get(f"/reports/aging?as_of={as_of}").get_data(as_text=True)
    # 30 days ago: INV-3 not yet issued, INV-2's payment not yet received.
    totals = aging_totals(page)
    assert totals["current"] == "3,650.00"  # INV-2 2,500 + INV-5 400 + INV-9 750
    assert totals["31-60"] == "1,000.00"  # INV-1, 40 days past due then
    assert totals["total"] == "4,650.00"


def test_the_drill_down_lists_exactly_the_invoices_of_the_bucket(ledger):
    spec = client_for(ledger, "spec")
    page = spec.get(f"/reports/aging/invoices?as_of={TODAY}&customer=C-100&bucket=1-30")
    text = page.get_data(as_text=True)
    assert re.findall(r'data-invoice="([^"]+)"', text) == ["INV-2", "INV-5"]
    assert shown(text, "bucket-total") == "2,400.00"
    other = spec.get(f"/reports/aging/invoices?as_of={TODAY}&customer=C-100&bucket=61-90")
    assert re.findall(r'data-invoice="([^"]+)"', other.get_data(as_text=True)) == ["INV-1"]
    empty = spec.get(f"/reports/aging/invoices?as_of={TODAY}&customer=C-100&bucket=120%2B")
    assert "No invoice of this customer is in this bucket" in empty.get_data(as_text=True)


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_the_aging_csv_parses_back_to_the_same_totals(ledger):
    client = client_for(ledger, "ctrl")
    rows = read_csv(client.get(f"/reports/aging.csv?as_of={TODAY}"))
    header, *customers, totals = rows
    assert header == ["customer_number", "name", "current", "1-30", "31-60", "61-90", "91-120",
                      "120+", "total", "unapplied_cash"]  # fmt: skip
    assert [r[0] for r in customers] == ["C-100", "C-200"]
    assert totals[0] == "TOTAL" and totals[2:9] == [
        "1234.56", "3150.00", "0.00", "1000.00", "0.00", "0.00", "5384.56"
    ]  # fmt: skip
    for col in range(2, 10):
        assert sum(Decimal(r[col]) for r in customers) == Decimal(totals[col])
    page = client.get(f"/reports/aging?as_of={TODAY}").get_data(as_text=True)
    assert aging_totals(page)["total"] == f"{Decimal(totals[8]):,.2f}"


def test_the_drill_down_csv_sums_to_the_bucket(ledger):
    client = client_for(ledger, "spec")
    response = client.get(f"/reports/aging/invoices.csv?as_of={TODAY}&customer=C-100&bucket=1-30")
    header, *items, totals = read_csv(response)
    assert header[0] == "invoice_number"
    assert [r[0] for r in items] == ["INV-2", "INV-5"]
    assert [r[4] for r in items] == ["2000.00", "400.00"] and totals[4] == "2400.00"
    assert items[1][6] == "true"
    disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="aging-C-100-1-30-{TODAY}.csv"'
    weird = client.get('/reports/aging.csv?sales_rep=a"b;c')
    assert weird.headers["Content-Disposition"] == (
        f'attachment; filename="aging-{TODAY}-a-b-c.csv"'
    )


def test_a_sales_rep_ages_only_their_own_customers(ledger):
    rep = client_for(ledger, "rep")
    page = rep.get("/reports/aging").get_data(as_text=True)
    assert 'data-customer="C-100"' in page and "C-200" not in page
    assert aging_totals(page)["total"] == "4,634.56"
    assert "Other Co" not in rep.get("/reports/aging?sales_rep=another").get_data(as_text=True)
    rows = read_csv(rep.get("/reports/aging.csv"))
    assert [r[0] for r in rows[1:-1]] == ["C-100"]
    drill = f"/reports/aging/invoices?as_of={TODAY}&customer=C-200&bucket=1-30"
    assert rep.get(drill).status_code == 403


def test_bad_report_queries_are_explained_on_the_page(ledger):
    client = client_for(ledger, "mgr")
    bad = client.get("/reports/aging?as_of=2024-02-30")
    assert bad.status_code == 422
    assert "is not a date: use YYYY-MM-DD" in shown(bad.get_data(as_text=True), "report-error")
    bucket = client.get(f"/reports/aging/invoices?as_of={TODAY}&customer=C-100&bucket=7-9")
    assert bucket.status_code == 422 and "not an aging bucket" in bucket.get_data(as_text=True)
    no_customer = f"/reports/aging/invoices?as_of={TODAY}&customer=NOPE&bucket=1-30"
    assert client.get(no_customer).status_code == 404
    assert client.get("/reports/aging.csv?as_of=yesterday").status_code == 400
    for query in ("start=2024-13-01", "end=x", "start=2024-03-01&end=2024-02-01", "end=0001-01-05"):
        response = client.get(f"/reports/dso?{query}")
        assert response.status_code == 422, query
        assert shown(response.get_data(as_text=True), "report-error")


# --- DSO ------------------------------------------------------------------------------------


def test_the_dso_page_shows_its_parts_and_six_month_ends(ledger):
    client = client_for(ledger, "spec")
    start, end = days(89), TODAY
    page = client.get(f"/reports/dso?start={start}&end={end}").get_data(as_text=True)
    # Issued in the last 90 days: INV-2 2,500 + INV-3 1,234.56 + INV-5 400 + INV-9 750.
    assert shown(page, "credit-sales") == "4,884.56"
    assert shown(page, "ar-balance") == "5,384.56"
    assert shown(page, "days") == "90"
    expected = (Decimal("5384.56") / Decimal("4884.56") * 90).quantize(Decimal("0.01"))
    assert shown(page, "dso-figure") == f"{expected} days"
    trend = page[page.index('data-testid="dso-trend"') :].split("</table>")[0]
    months = [m.strftime("%B %Y") for m in month_ends(TODAY)]
    assert len(months) == 6 and all(m in trend for m in months)
    assert client.get("/reports/dso").get_data(as_text=True).count("dso-figure") == 1


def test_month_ends_are_the_six_before_today():
    assert month_ends(date(2026, 3, 15)) == [
        date(2025, 9, 30), date(2025, 10, 31), date(2025, 11, 30),
        date(2025, 12, 31), date(2026, 1, 31), date(2026, 2, 28),
    ]  # fmt: skip


def test_report_access_and_navigation_follow_the_roles(ledger):
    owner = client_for(ledger, "owner")
    assert owner.get("/reports/aging").status_code == 200
    assert owner.get("/reports/dso").status_code == 200
    owner_aging = owner.get("/reports/aging").get_data(as_text=True)
    assert 'href="/customers/C-100"' not in owner_aging  # reports, but no customer pages
    spec_home = client_for(ledger, "spec").get("/").get_data(as_text=True)
    assert spec_home.count('href="/reports"') == 1 and 'href="/imports"' in spec_home
    mgr_home = client_for(ledger, "mgr").get("/").get_data(as_text=True)
    assert mgr_home.count('href="/reports"') == 1
    rep_home = client_for(ledger, "rep").get("/").get_data(as_text=True)
    assert 'href="/reports"' in rep_home and 'href="/imports"' not in rep_home
