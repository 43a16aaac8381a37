"""Uploaded XML is untrusted: no entity is expanded, nothing is fetched, a size limit answers
413, and the answer names the problem. Through every door: the validate API, the drafts
API, the modeler's save and the upload form."""

from __future__ import annotations

import io
import socket
import threading
import time
from pathlib import Path

import pytest

from casemgr.engine.specs import MAX_XML_BYTES

ROOT = Path(__file__).resolve().parent.parent
CREDIT = (ROOT / "workflows" / "bpmn" / "credit_application.bpmn").read_text()
XML = {"Content-Type": "application/xml"}

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">
  <bpmn:process id="p" name="&secret;" isExecutable="true" />
</bpmn:definitions>
"""
BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lollollollollollollollollollol">
<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&lol9;</bpmn:definitions>
"""
# A DTD with nothing dangerous in it: still refused, DTDs have no place in a diagram.
PLAIN_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE definitions [<!ELEMENT definitions ANY>]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" />
"""
THIRTY_MB = b"<a>" + b"x" * (30 * 1024 * 1024) + b"</a>"
PASSWORD = "correct-horse-1"


@pytest.fixture
def client_as(app):
    """A browser session (test client) logged in as the named user."""

    def login(name: str):
        client = app.test_client()
        assert (
            client.post("/login", data={"username": name, "password": PASSWORD}).status_code == 302
        )
        return client

    return login


@pytest.fixture
def listener():
    """A socket on 127.0.0.1 that records whether anything connects to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    hits: list[bytes] = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            hits.append(conn.recv(100))
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], hits
    stop.set()
    thread.join(timeout=2)
    server.close()


def remote_dtd(port: int) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE d SYSTEM "http://127.0.0.1:{port}/evil.dtd">\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" />'
    ).encode()


def remote_entity(port: int) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY e SYSTEM "http://127.0.0.1:{port}/x">]>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&e;'
        "</bpmn:definitions>"
    ).encode()


def validate(api, body: bytes):
    return api.as_("owner").post("/api/v1/processes/validate", data=body, headers=XML)


# --- validation answers, naming the problem ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (XXE, "<!DOCTYPE d>"),
        (BOMB, "<!DOCTYPE lolz>"),
        (PLAIN_DTD, "<!DOCTYPE definitions>"),
    ],
    ids=["external entity", "entity bomb", "a DTD"],
)
def test_unsafe_xml_is_refused_with_its_reason(api, body, words):
    started = time.perf_counter()
    resp = validate(api, body)
    assert time.perf_counter() - started < 2  # nothing was expanded
    assert resp.status_code == 200
    result = resp.get_json()
    assert result["valid"] is False
    assert any(
        words in e["message"] and "refused unsafe XML" in e["message"] for e in result["errors"]
    )
    assert "root:" not in resp.get_data(as_text=True)  # /etc/passwd was not read


def test_nothing_is_fetched_from_the_network(api, listener):
    port, hits = listener
    for body in (remote_dtd(port), remote_entity(port)):
        resp = validate(api, body)
        assert resp.status_code == 200
        assert resp.get_json()["valid"] is False
    time.sleep(0.3)
    assert hits == []


def test_a_30_mb_body_is_413_everywhere(api, client_as):
    owner = api.as_("owner")
    assert owner.post("/api/v1/processes/validate", data=THIRTY_MB, headers=XML).status_code == 413
    assert (
        owner.post("/api/v1/case-types/big/versions", data=THIRTY_MB, headers=XML).status_code
        == 413
    )
    put = owner.client.put(
        "/api/v1/case-types/big/draft",
        data=THIRTY_MB,
        headers={**XML, "Authorization": f"Bearer {owner.tokens['owner']}"},
    )
    assert put.status_code == 413
    web = client_as("owner")
    resp = web.post("/processes/credit_application/draft", data=THIRTY_MB, headers=XML)
    assert resp.status_code == 413
    assert "larger than the limit" in resp.get_json()["error"]
    upload = web.post(
        "/processes/credit_application/upload",
        data={"file": (io.BytesIO(THIRTY_MB), "big.bpmn")},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 413


def test_just_over_the_limit_is_413_and_nothing_is_saved(api):
    owner = api.as_("owner")
    body = b"<a>" + b"x" * MAX_XML_BYTES + b"</a>"
    assert owner.post("/api/v1/processes/validate", data=body, headers=XML).status_code == 413
    headers = {**XML, "Authorization": f"Bearer {owner.tokens['owner']}"}
    assert (
        owner.client.put("/api/v1/case-types/big/draft", data=body, headers=headers).status_code
        == 413
    )
    assert owner.client.get("/api/v1/case-types/big/draft", headers=headers).status_code == 404


# --- drafts: unsafe XML is never stored --------------------------------------------------------


@pytest.mark.parametrize("body", [XXE, BOMB, PLAIN_DTD, b"<a><b></a>", b"\xff\xfe\x00"])
def test_a_draft_refuses_unsafe_or_broken_xml_and_says_why(api, body):
    owner = api.as_("owner")
    headers = {**XML, "Authorization": f"Bearer {owner.tokens['owner']}"}
    resp = owner.client.put(
        "/api/v1/case-types/credit_application/draft", data=body, headers=headers
    )
    assert resp.status_code == 422
    message = resp.get_json()["error"]
    assert any(w in message for w in ("unsafe XML", "not well-formed", "not UTF-8"))
    assert (
        owner.client.get("/api/v1/case-types/credit_application/draft", headers=headers).status_code
        == 404
    )


def test_a_dmn_file_is_not_taken_as_a_diagram(api):
    owner = api.as_("owner")
    headers = {**XML, "Authorization": f"Bearer {owner.tokens['owner']}"}
    dmn = (ROOT / "workflows" / "dmn" / "authority.dmn").read_bytes()
    resp = owner.client.put(
        "/api/v1/case-types/credit_application/draft", data=dmn, headers=headers
    )
    assert resp.status_code == 422
    assert "DMN decision table, where a BPMN diagram was expected" in resp.get_json()["error"]


def test_the_upload_form_names_the_problem(client_as):
    web = client_as("owner")
    resp = web.post(
        "/processes/credit_application/upload",
        data={"file": (io.BytesIO(XXE), "evil.bpmn")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert "evil.bpmn was not loaded: refused unsafe XML" in page
    assert "root:x:0:0" not in page


def test_a_sound_upload_becomes_the_draft(client_as):
    web = client_as("owner")
    resp = web.post(
        "/processes/credit_application/upload",
        data={"file": (io.BytesIO(CREDIT.encode()), "credit.bpmn")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert resp.status_code == 200
    assert "credit.bpmn is now the draft; it validates." in resp.get_data(as_text=True)
    assert web.get("/processes/credit_application/working.bpmn").get_data(as_text=True) == CREDIT
