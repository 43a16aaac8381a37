"""Comments and attachments: PODs, BOLs and credit reports stored safely, refused clearly
when too large or not what they claim to be, and downloadable only by readers of the case."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile

import pytest

from casemgr.accounts import create_user, find_user, issue_token
from casemgr.attachments import sanitize_filename
from casemgr.engine.cases import start_case
from casemgr.extensions import db
from casemgr.models import Attachment, CaseEvent, Comment
from tests.credit_data import INTAKE
from tests.web_client import client_for

PASSWORD = "correct-horse-1"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(64) + b"PE\x00\x00"
EML = b"From: ap@acme.example\r\nTo: credit@us.example\r\nSubject: Remittance\r\n\r\nPaid.\r\n"
LIMIT = 4096


def office_file(kind: str, macros: bool = False) -> bytes:
    """A minimal Office Open XML package (the parts a type check looks at)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("[Content_Types].xml", "<Types/>")
        package.writestr("xl/workbook.xml" if kind == "xlsx" else "word/document.xml", "<x/>")
        if macros:
            package.writestr("xl/vbaProject.bin", b"\x00macro")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def storage(app, tmp_path):
    """Files go to this test's folder; the limit is small so 'too large' is cheap to send."""
    folder = tmp_path / "attachments"
    app.config.update(ATTACHMENT_DIR=str(folder), ATTACHMENT_MAX_BYTES=LIMIT)
    return folder


def stored_files(folder) -> list:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.fixture
def case_id(app) -> int:
    """A credit application rep started for Acme; spec holds its review task's role."""
    with app.app_context():
        return start_case("credit_application", dict(INTAKE), find_user("rep")).id


@pytest.fixture
def other_rep(app) -> str:
    with app.app_context():
        create_user("rep2", ["sales_rep"], PASSWORD, display_name="Other Rep")
        db.session.commit()
    return "rep2"


def upload(client, case_id: int, content: bytes, filename: str, content_type: str = "x/x"):
    return client.post(
        f"/cases/{case_id}/attachments",
        data={"file": (io.BytesIO(content), filename, content_type)},
        content_type="multipart/form-data",
    )


def error_text(response) -> str:
    found = re.search(r'data-testid="attachment-error"><li>(.*?)</li>', response.get_data(True))
    return found.group(1) if found else response.get_data(as_text=True)


# --- uploading in the browser ---------------------------------------------------------------


def test_a_specialist_attaches_a_pod_it_is_stored_under_a_random_name_and_shown(
    app, case_id, storage
):
    client = client_for(app, "spec")
    response = upload(client, case_id, PDF, "POD 4711.pdf", "text/html")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/cases/{case_id}#attachments")
    with app.app_context():
        att = db.session.execute(db.select(Attachment)).scalar_one()
        assert att.filename == "POD 4711.pdf"
        assert att.content_type == "application/pdf"  # detected, not what the client said
        assert att.size == len(PDF) and att.sha256 == hashlib.sha256(PDF).hexdigest()
        assert att.uploaded_by.username == "spec"
        event = db.session.execute(
            db.select(CaseEvent).filter_by(case_id=case_id, kind="attachment_added")
        ).scalar_one()
        assert event.actor == "spec" and event.detail["attachment_id"] == att.id
        key = att.storage_key
    [path] = stored_files(storage)
    assert path.name == key and "POD" not in str(path) and path.read_bytes() == PDF
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert f'href="/cases/{case_id}/attachments/{att.id}"' in page
    assert "Attached “POD 4711.pdf”" in page  # in the timeline


def test_a_file_over_the_limit_is_refused_with_413_and_leaves_nothing_behind(app, case_id, storage):
    response = upload(client_for(app, "spec"), case_id, PDF + bytes(LIMIT), "big.pdf")
    assert response.status_code == 413
    assert error_text(response) == "“big.pdf” is larger than the 4.0 KB limit for attachments."
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Attachment.id))).scalar_one() == 0
    assert stored_files(storage) == []


def test_a_body_far_over_the_limit_is_cut_off_before_reading_with_a_clear_413(app, case_id):
    response = upload(client_for(app, "spec"), case_id, PDF + bytes(200_000), "huge.pdf")
    assert response.status_code == 413
    assert "The file is larger than the 4.0 KB limit for attachments." in response.get_data(True)


def test_a_file_exactly_at_the_limit_is_accepted(app, case_id):
    content = PDF + b"%" * (LIMIT - len(PDF))
    assert upload(client_for(app, "spec"), case_id, content, "exact.pdf").status_code == 302


def test_the_limit_follows_the_config_even_above_the_apps_request_limit(app, case_id):
    app.config.update(ATTACHMENT_MAX_BYTES=300_000, MAX_CONTENT_LENGTH=100_000)
    content = PDF + b"%" * 250_000
    assert upload(client_for(app, "spec"), case_id, content, "scan.pdf").status_code == 302


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (
            EXE,
            "invoice.pdf",
            "“invoice.pdf” is not a PDF: its content does not match its .pdf extension. "
            "Attach the original file.",
        ),
        (
            EXE,
            "setup.exe",
            "“.exe” files cannot be attached. "
            "Attach a PDF, PNG, JPEG, TIFF, CSV, TXT, XLSX, DOCX or EML file.",
        ),
        (PDF, "statement.png", "“statement.png” is not a PNG image"),
        (EXE, "remittance.csv", "“remittance.csv” is not a CSV file"),
        (office_file("docx"), "aging.xlsx", "“aging.xlsx” is not an Excel workbook"),
        (office_file("xlsx", macros=True), "aging.xlsx", "“aging.xlsx” is not an Excel workbook"),
        (PDF, "mail.eml", "“mail.eml” is not an e-mail message"),
        (b"", "empty.pdf", "“empty.pdf” is empty."),
        (PDF, "README", "Files without an extension cannot be attached."),
    ],
)
def test_a_file_that_is_not_what_it_claims_is_refused_with_422(
    app, case_id, storage, content, filename, message
):
    response = upload(client_for(app, "spec"), case_id, content, filename)
    assert response.status_code == 422
    assert error_text(response).startswith(message)
    assert stored_files(storage) == []


def test_no_file_chosen_is_a_422_that_says_so(app, case_id):
    response = client_for(app, "spec").post(f"/cases/{case_id}/attachments", data={})
    assert response.status_code == 422
    assert error_text(response) == "Choose a file to attach."


@pytest.mark.parametrize(
    ("content", "filename", "content_type"),
    [
        (PNG, "signed-bol.PNG", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "scan.jpeg", "image/jpeg"),
        (b"II*\x00\x08\x00\x00\x00", "fax.tif", "image/tiff"),
        (b"invoice,amount\nINV-1,100.00\n", "remit.csv", "text/csv"),
        ("Réf. facture 12, payée\n".encode("cp1252"), "note.txt", "text/plain"),
        ("\ufeffinvoice\tamount\n".encode("utf-16"), "export.txt", "text/plain"),
        (EML, "remittance.eml", "message/rfc822"),
        (office_file("xlsx"), "aging.xlsx", "spreadsheetml.sheet"),
        (office_file("docx"), "letter.docx", "wordprocessingml.document"),
    ],
)
def test_every_allowed_type_is_accepted_and_stored_with_its_detected_type(
    app, case_id, content, filename, content_type
):
    assert upload(client_for(app, "spec"), case_id, content, filename).status_code == 302
    with app.app_context():
        att = db.session.execute(db.select(Attachment)).scalar_one()
        assert att.content_type.endswith(content_type)


def test_a_filename_with_path_traversal_is_stored_as_its_last_part_only(app, api, case_id, storage):
    client = client_for(app, "spec")
    assert upload(client, case_id, PDF, "../../../etc/cron.d/pod.pdf").status_code == 302
    # Multipart headers unescape backslashes; JSON keeps them, so Windows paths go that way.
    windows = file_value(PDF, "..\\..\\Windows\\System32\\bol.pdf")
    assert (
        api.as_("spec").post(f"/api/v1/cases/{case_id}/attachments", json=windows).status_code
        == 201
    )
    with app.app_context():
        names = set(db.session.execute(db.select(Attachment.filename)).scalars())
    assert names == {"pod.pdf", "bol.pdf"}
    assert all(p.parent.parent == storage for p in stored_files(storage))


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\x\\report.PDF", "report.pdf"),
        ('"; filename=evil.html; x=".pdf', "_ filename=evil.html_ x=_.pdf"),
        ("Müller Lieferschein.pdf", "Müller Lieferschein.pdf"),
        ("\x00\x1b[31mred.txt", "_31mred.txt"),
        ("...", "attachment"),
        (".htaccess.txt", "htaccess.txt"),
        ("a" * 300 + ".pdf", "a" * 146 + ".pdf"),
    ],
)
def test_filenames_are_sanitized_for_headers_pages_and_disks(raw, clean):
    assert sanitize_filename(raw) == clean


# --- downloading ------------------------------------------------------------------------------


def uploaded(app, case_id: int, who: str = "spec", content: bytes = PDF) -> int:
    assert upload(client_for(app, who), case_id, content, "pod 4711.pdf").status_code == 302
    with app.app_context():
        return db.session.execute(db.select(Attachment.id)).scalars().all()[-1]


def test_a_reader_of_the_case_downloads_the_file_as_an_attachment(app, case_id):
    att_id = uploaded(app, case_id)
    response = client_for(app, "rep").get(f"/cases/{case_id}/attachments/{att_id}")
    assert response.status_code == 200
    assert response.data == PDF
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "pod 4711.pdf" in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response.headers["Cache-Control"]
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_a_sales_rep_of_another_customer_cannot_download_or_list_the_file(app, case_id, other_rep):
    att_id = uploaded(app, case_id)
    client = client_for(app, other_rep)
    response = client.get(f"/cases/{case_id}/attachments/{att_id}")
    assert response.status_code == 403 and PDF not in response.data
    assert upload(client, case_id, PDF, "mine.pdf").status_code == 403
    assert client.post(f"/cases/{case_id}/comments", data={"body": "hi"}).status_code == 403


def test_an_attachment_id_of_another_case_is_not_found_through_this_case(app, case_id):
    att_id = uploaded(app, case_id)
    with app.app_context():
        other = start_case("credit_application", dict(INTAKE), find_user("rep")).id
    client = client_for(app, "rep")
    assert client.get(f"/cases/{other}/attachments/{att_id}").status_code == 404
    assert client.get(f"/cases/{case_id}/attachments/{att_id + 1}").status_code == 404
    assert client.get(f"/cases/{case_id}/attachments/{att_id}").status_code == 200


def test_a_visitor_without_login_gets_the_login_page_not_the_file(app, case_id):
    att_id = uploaded(app, case_id)
    response = app.test_client().get(f"/cases/{case_id}/attachments/{att_id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- comments -----------------------------------------------------------------------------------


def test_a_comment_is_added_to_the_case_and_its_timeline(app, case_id):
    client = client_for(app, "rep")
    response = client.post(
        f"/cases/{case_id}/comments", data={"body": "  Customer says financials come Friday.  "}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/cases/{case_id}#comments")
    with app.app_context():
        comment = db.session.execute(db.select(Comment)).scalar_one()
        assert comment.body == "Customer says financials come Friday."
        assert comment.author.username == "rep"
        kinds = db.session.execute(db.select(CaseEvent.kind).filter_by(case_id=case_id)).scalars()
        assert "comment" in list(kinds)
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert page.count("Customer says financials come Friday.") == 2  # the list and the timeline


def test_an_empty_or_overlong_comment_is_refused_and_the_text_kept(app, case_id):
    client = client_for(app, "spec")
    response = client.post(f"/cases/{case_id}/comments", data={"body": "   "})
    assert response.status_code == 422
    assert "Write a comment first." in response.get_data(as_text=True)
    long = "x" * 4001
    response = client.post(f"/cases/{case_id}/comments", data={"body": long})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "A comment has at most 4,000 characters." in page and long in page
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Comment.id))).scalar_one() == 0


def test_the_task_page_macros_render_a_compact_list(app, case_id):
    uploaded(app, case_id)
    client_for(app, "spec").post(f"/cases/{case_id}/comments", data={"body": "Called AP."})
    with app.app_context(), app.test_request_context():
        from casemgr.models import Case

        case = db.session.get(Case, case_id)
        html = app.jinja_env.from_string(
            '{% from "cases/_attachments.html" import attachment_list %}'
            '{% from "cases/_comments.html" import comment_list %}'
            "{{ attachment_list(case, compact=True) }}{{ comment_list(case, compact=True) }}"
        ).render(case=case)
    assert "pod 4711.pdf" in html and "Called AP." in html
    assert "Attach a file on the case page" in html


# --- the API --------------------------------------------------------------------------------


def file_value(content: bytes, filename: str = "pod.pdf") -> dict:
    return {"filename": filename, "content_base64": base64.b64encode(content).decode()}


def test_an_erp_attaches_a_pod_over_the_api_and_downloads_it(api, case_id):
    response = api.as_("spec").post(
        f"/api/v1/cases/{case_id}/attachments", json=file_value(PDF, "../POD-4711.pdf")
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["filename"] == "POD-4711.pdf" and body["content_type"] == "application/pdf"
    assert body["size"] == len(PDF) and body["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert body["uploaded_by"] == "spec"
    assert response.headers["Location"] == body["url"]
    download = api.as_("rep").get(body["url"])
    assert download.status_code == 200 and download.data == PDF
    assert download.headers["Content-Disposition"].startswith("attachment;")
    listing = api.as_("rep").get(f"/api/v1/cases/{case_id}/attachments").get_json()
    assert [a["id"] for a in listing] == [body["id"]]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"filename": "pod.pdf"}, 422, "content_base64"),
        ({"content_base64": "JVBERi0="}, 422, "filename"),
        ({"filename": "pod.pdf", "content_base64": "not base64!"}, 422, "content_base64"),
    ],
)
def test_a_malformed_file_value_is_a_422_naming_the_field(api, case_id, body, status, field):
    response = api.as_("spec").post(f"/api/v1/cases/{case_id}/attachments", json=body)
    assert response.status_code == status
    assert field in response.get_json()["errors"]


def test_the_api_refuses_a_renamed_executable_and_a_file_over_the_limit(api, case_id, storage):
    spec = api.as_("spec")
    response = spec.post(f"/api/v1/cases/{case_id}/attachments", json=file_value(EXE))
    assert response.status_code == 422
    assert "is not a PDF" in response.get_json()["error"]
    big = file_value(PDF + bytes(LIMIT))
    response = spec.post(f"/api/v1/cases/{case_id}/attachments", json=big)
    assert response.status_code == 413
    assert "4.0 KB limit" in response.get_json()["error"]
    huge = file_value(PDF + bytes(100_000))
    response = spec.post(f"/api/v1/cases/{case_id}/attachments", json=huge)
    assert response.status_code == 413
    assert "4.0 KB limit" in response.get_json()["error"]
    assert stored_files(storage) == []


def test_the_api_answers_401_404_and_403_in_the_contracts_order(app, api, case_id, other_rep):
    with app.app_context():
        token = issue_token(find_user(other_rep))
        db.session.commit()
    path = f"/api/v1/cases/{case_id}/attachments"
    assert api.post(path, json=file_value(PDF)).status_code == 401
    assert api.as_("spec").post("/api/v1/cases/999999/attachments", json={}).status_code == 404
    other = api.post(path, json=file_value(PDF), headers={"Authorization": f"Bearer {token}"})
    assert other.status_code == 403
    att = api.as_("spec").post(path, json=file_value(PDF)).get_json()
    denied = api.get(att["url"], headers={"Authorization": f"Bearer {token}"})
    assert denied.status_code == 403 and denied.data != PDF
    huge_to_nowhere = api.as_("spec").post(
        "/api/v1/cases/999999/attachments", json=file_value(bytes(100_000))
    )
    assert huge_to_nowhere.status_code == 404  # 404 before 413
    assert api.as_("spec").post(path, data="not json").status_code == 400


def test_the_attachment_routes_are_documented(api):
    doc = api.get("/api/v1/openapi.json").get_json()
    upload_op = doc["paths"]["/api/v1/cases/{case_id}/attachments"]["post"]
    assert {"201", "401", "403", "404", "413", "422"} <= set(upload_op["responses"])
    schema = upload_op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["filename", "content_base64"]
    assert "get" in doc["paths"]["/api/v1/cases/{case_id}/attachments/{attachment_id}"]
