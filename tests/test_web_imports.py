"""CSV import in the browser: upload, a preview that names every problem and writes nothing,
one confirmation that imports everything (once), and the limits around it."""

from __future__ import annotations

import io
import json
import os
import re
import time
from decimal import Decimal

import pytest

from casemgr.extensions import db
from casemgr.models import Customer, Invoice, Payment
from tests.web_client import client_for

PASSWORD = "correct-horse-1"

CUSTOMERS = (
    "number,name,credit_limit,terms_days,sales_rep\n"
    "C-100,Acme Supply,10000.00,30,rep\n"
    "C-200,Globex,5000.00,45,rep\n"
)
INVOICES = (
    "customer_number,number,invoice_date,due_date,amount\n"
    "C-100,INV-1,2024-01-01,2024-01-31,300.00\n"
    "C-100,INV-2,2024-03-01,2024-03-31,200.50\n"
)


@pytest.fixture
def app(app, tmp_path):
    """Uploads staged in this test's own folder, not the instance folder."""
    app.config["IMPORT_STAGING_DIR"] = str(tmp_path / "staging")
    return app


def upload(client, kind: str, text: str | bytes, encoding: str = "utf-8", name="ledger.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        "/imports",
        data={"kind": kind, "encoding": encoding, "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def token_of(response) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)
    match = re.fullmatch(r"/imports/([A-Za-z0-9_-]+)", response.location)
    assert match, response.location
    return match.group(1)


def count(app, model) -> int:
    with app.app_context():
        return db.session.execute(db.select(db.func.count()).select_from(model)).scalar_one()


def staged_files(app) -> list[str]:
    folder = app.config["IMPORT_STAGING_DIR"]
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_the_preview_shows_the_first_rows_and_writes_nothing(app):
    spec = client_for(app, "spec")
    token = token_of(upload(spec, "customers", CUSTOMERS))
    page = spec.get(f"/imports/{token}").get_data(as_text=True)
    assert "Customers from ledger.csv" in page
    assert "2 rows checked, no errors: importing creates 2 and updates 0" in page
    rows = page[page.index('data-testid="import-rows"') :].split("</table>")[0]
    assert "Acme Supply" in rows and "10,000.00" in rows and "Globex" in rows
    assert 'data-testid="confirm-import"' in page
    assert count(app, Customer) == 0


def test_every_row_error_is_listed_and_confirm_is_not_offered(app):
    spec = client_for(app, "spec")
    upload_ok = upload(spec, "customers", CUSTOMERS)
    spec.post(f"/imports/{token_of(upload_ok)}/confirm")
    bad = (
        "customer_number,number,invoice_date,due_date,amount\n"
        "C-100,INV-1,2024-01-01,2024-01-31,300.00\n"
        "C-999,INV-2,2024-03-01,2024-03-31,200.50\n"
        "C-100,INV-3,2024-02-30,2024-03-31,12,50\n"
        "C-100,INV-1,2024-01-01,2024-01-31,1.00\n"
    )
    token = token_of(upload(spec, "invoices", bad))
    page = spec.get(f"/imports/{token}").get_data(as_text=True)
    assert "This file cannot be imported" in page
    errors = page[page.index('data-testid="import-errors"') :].split("</table>")[0]
    found = re.findall(r'<td class="num">(\d+)</td><td>([^<]*)</td><td>([^<]*)</td>', errors)
    assert ("3", "customer_number", "unknown customer") in found
    assert any(row == "4" and field == "invoice_date" for row, field, _ in found)
    assert any(row == "4" and "more values than the header" in msg for row, _, msg in found)
    assert ("5", "number", "duplicate of row 2") in found
    assert 'data-testid="confirm-import"' not in page
    assert spec.post(f"/imports/{token}/confirm").status_code == 302
    assert count(app, Invoice) == 0  # a confirm forced anyway imports nothing


def test_confirming_imports_everything_once(app):
    spec = client_for(app, "spec")
    token = token_of(upload(spec, "customers", CUSTOMERS))
    first = spec.post(f"/imports/{token}/confirm", follow_redirects=True)
    assert "Imported 2 customers from ledger.csv (2 new, 0 updated)." in first.get_data(
        as_text=True
    )
    assert count(app, Customer) == 2
    second = spec.post(f"/imports/{token}/confirm", follow_redirects=True)
    assert "Nothing was imported: that upload was already imported" in second.get_data(as_text=True)
    assert count(app, Customer) == 2
    assert spec.get(f"/imports/{token}").status_code == 302  # the preview is gone too
    assert staged_files(app) == []


def test_a_second_confirm_of_the_same_token_does_nothing_even_after_a_change(app):
    spec = client_for(app, "spec")
    spec.post(f"/imports/{token_of(upload(spec, 'customers', CUSTOMERS))}/confirm")
    token = token_of(upload(spec, "invoices", INVOICES))
    spec.post(f"/imports/{token}/confirm")
    with app.app_context():
        inv = db.session.execute(db.select(Invoice).filter_by(number="INV-1")).scalar_one()
        inv.amount = Decimal("999.00")  # someone edits the ledger afterwards
        db.session.commit()
    spec.post(f"/imports/{token}/confirm")
    with app.app_context():
        inv = db.session.execute(db.select(Invoice).filter_by(number="INV-1")).scalar_one()
        assert inv.amount == Decimal("999.00")


def test_an_upload_is_its_uploaders_alone(app):
    token = token_of(upload(client_for(app, "spec"), "customers", CUSTOMERS))
    other = client_for(app, "spec2")
    assert other.get(f"/imports/{token}").status_code == 302
    assert other.post(f"/imports/{token}/confirm").status_code == 302
    assert count(app, Customer) == 0
    spec = client_for(app, "spec")
    spec.post(f"/imports/{token}/confirm")
    assert count(app, Customer) == 2  # the owner's token still worked


def test_an_expired_upload_cannot_be_confirmed(app):
    spec = client_for(app, "spec")
    token = token_of(upload(spec, "customers", CUSTOMERS))
    path = os.path.join(app.config["IMPORT_STAGING_DIR"], f"{token}.json")
    with open(path, encoding="utf-8") as f:
        record = json.load(f)
    record["created"] = time.time() - 7200
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f)
    spec.post(f"/imports/{token}/confirm")
    assert count(app, Customer) == 0


def test_importing_payments_delivers_the_payment_messages_in_the_same_transaction(app):
    spec = client_for(app, "spec")
    spec.post(f"/imports/{token_of(upload(spec, 'customers', CUSTOMERS))}/confirm")
    spec.post(f"/imports/{token_of(upload(spec, 'invoices', INVOICES))}/confirm")
    payments = (
        "customer_number,reference,received_date,amount,method,invoice_number\n"
        "C-100,CHK-1,2024-02-10,300.00,check,INV-1\n"
        "C-100,CHK-2,2024-04-10,200.50,wire,INV-2\n"
    )
    token = token_of(upload(spec, "payments", payments))
    done = spec.post(f"/imports/{token}/confirm", follow_redirects=True).get_data(as_text=True)
    assert "Imported 2 payments from ledger.csv (2 new, 0 updated)." in done
    assert "ended case" not in done  # no referral waits for these customers
    assert count(app, Payment) == 2


def test_a_file_that_is_not_csv_text_is_refused_on_the_upload_page(app):
    spec = client_for(app, "spec")
    response = upload(spec, "customers", b"\x89PNG\x00\x00binary")
    assert response.status_code == 422
    assert "This file cannot be read: the body is binary" in response.get_data(as_text=True)
    missing = spec.post("/imports", data={"encoding": "utf-8"}, content_type="multipart/form-data")
    text = missing.get_data(as_text=True)
    assert missing.status_code == 422 and "Choose what the file contains." in text
    assert "Choose a CSV file to upload." in text
    assert staged_files(app) == []


def test_windows_1252_files_are_read_when_chosen(app):
    spec = client_for(app, "spec")
    text = "number,name,credit_limit,terms_days\nC-300,Caf\xe9 M\xfcller,100.00,30\n"
    token = token_of(upload(spec, "customers", text.encode("cp1252"), encoding="cp1252"))
    assert "Café Müller" in spec.get(f"/imports/{token}").get_data(as_text=True)


def test_a_file_over_the_upload_limit_gets_a_friendly_413(app):
    app.config["MAX_CONTENT_LENGTH"] = 2048
    response = upload(client_for(app, "spec"), "customers", CUSTOMERS + "x" * 4096)
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "larger than the upload limit of 2 KB" in page
    assert staged_files(app) == []


@pytest.mark.parametrize("who", ["rep", "owner"])
def test_only_importers_may_import(app, who):
    client = client_for(app, who)
    assert client.get("/imports").status_code == 403
    assert upload(client, "customers", CUSTOMERS).status_code == 403
    token = token_of(upload(client_for(app, "spec"), "customers", CUSTOMERS))
    assert client.post(f"/imports/{token}/confirm").status_code == 403
    assert count(app, Customer) == 0


def test_a_token_that_is_not_ours_is_not_a_path(app):
    spec = client_for(app, "spec")
    assert spec.get("/imports/..%2F..%2Fsecret_key").status_code == 404
    assert spec.post("/imports/" + "a" * 31 + "/confirm").status_code == 404
