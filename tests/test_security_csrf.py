"""Every form is protected against cross-site posts: without the CSRF token, 400 and nothing
changes. API routes authenticate by bearer token, which a browser never sends on its own,
so they are exempt by design (casemgr.web.api.register_api)."""

from __future__ import annotations

import hashlib
import re

import pytest
from flask import url_for
from sqlalchemy import inspect

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.extensions import db
from tests.conftest import app_from_template
from tests.credit_data import INTAKE

PASSWORD = "correct-horse-1"
VALUES = {
    "name": "spec",
    "token": "no-such-upload",
    "kind": "approval",
    "key": "credit_application",
    "number": "C-0001",
    "collection": "case-types",
    "filename": "css/app.css",
}


@pytest.fixture
def csrf_app(tmp_path, template_db):
    app = app_from_template(
        template_db,
        tmp_path / "csrf.db",
        WTF_CSRF_ENABLED=True,
        ATTACHMENT_DIR=str(tmp_path / "attachments"),
    )
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def database_digest(app) -> str:
    """A hash of every row of every table: equal means nothing at all changed."""
    digest = hashlib.sha256()
    with app.app_context():
        for table in sorted(inspect(db.engine).get_table_names()):
            rows = db.session.execute(db.text(f'SELECT * FROM "{table}"')).all()
            digest.update(f"{table}:{sorted(map(repr, rows))}".encode())
    return digest.hexdigest()


def logged_in(app, name: str):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    token = token or re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, "the login page has no CSRF token"
    response = client.post(
        "/login", data={"username": name, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert response.status_code == 302
    return client


def test_every_form_refuses_a_post_without_the_csrf_token(csrf_app):
    with csrf_app.app_context():
        case = engine.start_case("credit_application", dict(INTAKE), find_user("rep"))
        ids = {
            "case_id": case.id,
            "task_id": case.tasks[0].id,
            "attachment_id": 1,
            "view_id": 1,
            "notification_id": 1,
            "failure_id": 1,
            "version": 1,
        }
    web_posts = [
        rule
        for rule in csrf_app.url_map.iter_rules()
        if "POST" in rule.methods and not rule.endpoint.startswith("api.")
    ]
    assert len(web_posts) > 30
    before = database_digest(csrf_app)
    client = logged_in(csrf_app, "admin")
    accepted = []
    for rule in web_posts:
        values = {**VALUES, **ids}
        if rule.endpoint.startswith("processes."):
            values["number"] = 1
        with csrf_app.test_request_context():
            path = url_for(rule.endpoint, **{k: values[k] for k in rule.arguments})
        response = client.post(path, data={"body": "hello", "reason": "x", "to": "spec2"})
        if response.status_code != 400 or "The form had expired" not in response.get_data(True):
            accepted.append((rule.endpoint, path, response.status_code))
    assert not accepted, accepted
    assert client.get("/").status_code == 200  # still logged in: logout was refused too
    assert database_digest(csrf_app) == before


def test_the_api_needs_no_csrf_token_but_a_bearer_token(csrf_app):
    from casemgr.accounts import issue_token

    with csrf_app.app_context():
        token = issue_token(find_user("spec"))
        db.session.commit()
    client = csrf_app.test_client()
    body = {"case_type": "credit_application", "data": dict(INTAKE)}
    assert client.post("/api/v1/cases", json=body).status_code == 401
    started = client.post("/api/v1/cases", json=body, headers={"Authorization": f"Bearer {token}"})
    assert started.status_code == 201
