"""Schemathesis against the served OpenAPI document: no generated request gets a 500.

The app is the real one, in process (WSGI), on a copy of the test database holding a small
ledger, a few cases started through the API, an attachment, a saved view and a draft. Each
generated request is sent as one of several roles (or with no token), drawn by Hypothesis,
and about half the time its path parameters are swapped for ids and keys that exist (a
random integer almost never names a case, so without this every task operation would stop
at 404). Every answer is checked for: not a server error, a documented status code, a
documented content type, a body that matches the documented schema, and (for a request left
as generated, without a query string) that a request violating the schema is refused.

The run is deterministic (``derandomize``) and bounded: ``FAST_EXAMPLES`` per operation in
the default run (about 30 s). The deeper variant (``DEEP_EXAMPLES``, a few minutes) is marked
``slow`` and runs only with ``CASEMGR_FUZZ_DEEP=1``, since ``make test`` runs every marker.
"""

from __future__ import annotations

import base64
import os
import shutil

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from casemgr import create_app
from casemgr.accounts import find_user, issue_token
from casemgr.extensions import db
from casemgr.models import Attachment, Case, CaseType, DecisionVersion, SavedView, TaskRecord, User
from tests.credit_data import INTAKE

ROLES = ("spec", "mgr", "ctrl", "rep", "owner", "admin")
FAST_EXAMPLES = 20
DEEP_EXAMPLES = 80
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

CUSTOMERS = "number,name,credit_limit,terms_days,sales_rep\nC-1,Acme,1000.00,30,rep\n"
INVOICES = (
    "customer_number,number,invoice_date,due_date,amount\n"
    "C-1,I-1,2024-01-01,2024-01-31,300.00\n"
    "C-1,I-2,2024-03-01,2024-03-31,200.00\n"
)
PAYMENTS = (
    "customer_number,reference,received_date,amount,method,invoice_number\n"
    "C-1,P-1,2024-02-10,100.00,check,I-1\n"
)
CSV = {"Content-Type": "text/csv"}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _config(uri: str, **extra) -> dict:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": uri,
        "WTF_CSRF_ENABLED": False,
        "SECRET_KEY": "test",
        **extra,
    }


class Served:
    """The app under test, a bearer token for each role, and what exists, by path parameter."""

    def __init__(self, app, tokens: dict[str, str]):
        self.app = app
        self.tokens = tokens
        self.existing: dict[str, list] = {}

    def headers(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}

    def post(self, who: str, path: str, **kw):
        headers = {**kw.pop("headers", {}), **self.headers(who)}
        resp = self.app.test_client().open(
            path, method=kw.pop("method", "POST"), headers=headers, **kw
        )
        assert resp.status_code in (200, 201), (path, resp.status_code, resp.get_data(as_text=True))
        return resp.get_json(silent=True)


def _seed(served: Served) -> None:
    for kind, text in (("customers", CUSTOMERS), ("invoices", INVOICES), ("payments", PAYMENTS)):
        served.post("spec", f"/api/v1/imports/{kind}", data=text.encode(), headers=CSV)
    cases = [
        served.post(
            "rep", "/api/v1/cases", json={"case_type": "credit_application", "data": INTAKE}
        )
        for _ in range(3)
    ]
    served.post("spec", f"/api/v1/tasks/{cases[0]['tasks'][0]['id']}/claim")
    file = {"filename": "pod.pdf", "content_base64": base64.b64encode(PDF).decode()}
    served.post("spec", f"/api/v1/cases/{cases[0]['id']}/attachments", json=file)
    served.post("spec", "/api/v1/views", json={"name": "mine", "params": {"sort": "due_at"}})
    bpmn = served.app.test_client().get(
        "/api/v1/case-types/credit_hold_release/versions/1/bpmn", headers=served.headers("owner")
    )
    served.post(
        "owner",
        "/api/v1/case-types/credit_hold_release/draft",
        method="PUT",
        data=bpmn.get_data(),
        headers={"Content-Type": "application/xml"},
    )


def _existing() -> dict[str, list]:
    """Values that name something, for each path parameter of the API."""

    def ids(model) -> list:
        return list(db.session.execute(select(model.id)).scalars())

    keys = list(db.session.execute(select(CaseType.key)).scalars())
    keys += list(db.session.execute(select(DecisionVersion.key).distinct()).scalars())
    return {
        "case_id": ids(Case),
        "task_id": ids(TaskRecord),
        "attachment_id": ids(Attachment),
        "view_id": ids(SavedView),
        "key": keys,
        "version": [1, 2],
        "old": [1],
        "new": [1, 2],
        "number": ["C-1"],
        "name": list(db.session.execute(select(User.username)).scalars()),
        "kind": ["customers", "invoices", "payments", "orders"],
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory, template_db):
    folder = tmp_path_factory.mktemp("schemathesis")
    shutil.copyfile(template_db, folder / "api.db")
    app = create_app(
        _config(f"sqlite:///{folder / 'api.db'}", ATTACHMENT_DIR=str(folder / "attachments"))
    )
    with app.app_context():
        tokens = {who: issue_token(find_user(who)) for who in ROLES}
        db.session.commit()
    result = Served(app, tokens)
    _seed(result)
    with app.app_context():
        result.existing = _existing()
    yield result
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# The document as the app serves it, read at collection time from an app with no database
# (serving it touches none); the requests go to the seeded app of the ``served`` fixture.
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", create_app(_config("sqlite://")))
# The bearer token is ours to set (a role per example), and unknown query parameters are
# ignored, as by most APIs: neither is what these tests look for.
schema.config.generation.update(allow_extra_parameters=False, with_security_parameters=False)

_SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}
# A role, or None: no token at all.
_WHO = st.sampled_from((*ROLES, None))
# None: keep the generated path parameters; a number: use the existing value it picks.
_PICKS = st.one_of(st.none(), st.integers(0, 50))


def _call(case, served: Served, who: str | None, pick: int | None) -> None:
    # Query strings are parsed leniently on purpose (an empty value is no filter, flags take
    # true/false too, as the web pages send them), so only requests without one are held to
    # "a request that violates the schema is refused".
    checks = [*CHECKS] if case.query else [*CHECKS, negative_data_rejection]
    if pick is not None and case.path_parameters:
        for name in case.path_parameters:
            pool = served.existing.get(name)
            if pool:
                case.path_parameters[name] = pool[pick % len(pool)]
        # A swapped-in id may turn a deliberately invalid request into a valid one.
        checks = CHECKS
    case.call_and_validate(app=served.app, headers=served.headers(who), checks=checks)


@schema.parametrize()
@schema.given(who=_WHO, pick=_PICKS)
@settings(max_examples=FAST_EXAMPLES, **_SETTINGS)
def test_no_generated_request_gets_a_server_error(case, who, pick, served):
    _call(case, served, who, pick)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("CASEMGR_FUZZ_DEEP"), reason="set CASEMGR_FUZZ_DEEP=1")
@schema.parametrize()
@schema.given(who=_WHO, pick=_PICKS)
@settings(max_examples=DEEP_EXAMPLES, **_SETTINGS)
def test_no_generated_request_gets_a_server_error_deeper(case, who, pick, served):
    _call(case, served, who, pick)


def test_the_seeded_objects_are_there_to_be_found(served):
    """The fuzzing above reaches real cases, tasks, attachments and views, not only 404s."""
    for name in ("case_id", "task_id", "attachment_id", "view_id", "key"):
        assert served.existing[name], name
    client = served.app.test_client()
    case_id = served.existing["case_id"][0]
    resp = client.get(f"/api/v1/cases/{case_id}", headers=served.headers("spec"))
    assert resp.status_code == 200
    assert len(list(schema.get_all_operations())) >= 40


def test_a_comment_per_task_must_be_text(served):
    """Found by the fuzzing: ``comments`` of the wrong type were dropped for ``comment``."""
    body = {"tasks": served.existing["task_id"][:1], "action": "approve", "comments": {"1": 5}}
    resp = served.app.test_client().post(
        "/api/v1/approvals/decide", json=body, headers=served.headers("mgr")
    )
    assert resp.status_code == 422
    assert resp.get_json()["errors"] == {"comments": ["each comment must be a string"]}


def test_the_document_says_what_a_path_can_hold_and_what_a_download_is():
    """Found by the fuzzing: the draft routes take two collections only, every path with a
    parameter can answer 404, and an attachment comes back with its own type."""
    draft = schema.raw_schema["paths"]["/api/v1/{collection}/{key}/draft"]["put"]
    [collection] = [p for p in draft["parameters"] if p["name"] == "collection"]
    assert collection["schema"]["enum"] == ["case-types", "decision-tables"]
    assert "404" in draft["responses"]
    download = schema.raw_schema["paths"]["/api/v1/cases/{case_id}/attachments/{attachment_id}"]
    types = download["get"]["responses"]["200"]["content"]
    assert {"application/pdf", "image/png", "text/csv"} <= types.keys()


def test_a_list_of_task_ids_holds_ids(served):
    """Found by the fuzzing: nulls and objects in ``tasks`` were each answered as a 404."""
    client = served.app.test_client()
    for path in ("/api/v1/tasks/bulk-complete", "/api/v1/approvals/decide"):
        body = {"tasks": [None, {}], "action": "approve"}
        resp = client.post(path, json=body, headers=served.headers("mgr"))
        assert resp.status_code == 422, path
        assert resp.get_json()["errors"]["tasks"] == ["each task id must be a number or a string"]


def test_a_reason_longer_than_the_timeline_keeps_is_refused(served):
    """Found by the fuzzing: a 501-character reason was cut to 500 without a word."""
    task_id = served.existing["task_id"][0]
    resp = served.app.test_client().post(
        f"/api/v1/tasks/{task_id}/priority",
        json={"priority": 1, "reason": "x" * 501},
        headers=served.headers("mgr"),
    )
    assert resp.status_code == 422
    assert resp.get_json()["errors"] == {"reason": ["at most 500 characters"]}
