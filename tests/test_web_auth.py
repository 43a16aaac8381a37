"""Logging in and out, and what every page gets from the security layer."""

from __future__ import annotations

import pytest

from casemgr import create_app
from casemgr.extensions import db
from casemgr.setup import init_database

PASSWORD = "correct-horse-1"


def login(client, name: str, password: str = PASSWORD, **kw):
    return client.post("/login", data={"username": name, "password": password}, **kw)


def test_pages_need_a_login_and_send_you_back_after_it(app):
    client = app.test_client()
    response = client.get("/cases")
    assert response.status_code == 302
    assert response.location.startswith("/login?next=")

    response = client.post("/login?next=/cases", data={"username": "spec", "password": PASSWORD})
    assert response.status_code == 302
    assert response.location == "/cases"


@pytest.mark.parametrize(
    "name, password", [("spec", "wrong-password"), ("nobody", PASSWORD), ("spec", "")]
)
def test_a_failed_login_says_the_same_thing_whatever_was_wrong(app, name, password):
    response = login(app.test_client(), name, password)
    assert response.status_code in (200, 401)
    page = response.get_data(as_text=True)
    if password:
        assert "Invalid user name or password." in page
    assert 'value="' + PASSWORD + '"' not in page


def test_a_deactivated_user_cannot_log_in(app):
    from casemgr.accounts import find_user

    with app.app_context():
        find_user("spec2").active = False
        db.session.commit()
    response = login(app.test_client(), "spec2")
    assert response.status_code == 401
    assert "Invalid user name or password." in response.get_data(as_text=True)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil", "x"])
def test_login_never_redirects_to_another_site(app, target):
    response = app.test_client().post(
        "/login", query_string={"next": target}, data={"username": "spec", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response.location == "/"


def test_logout_is_a_post_and_ends_the_session(app):
    client = app.test_client()
    login(client, "spec")
    assert client.get("/").status_code == 200
    assert client.get("/logout").status_code == 405
    response = client.post("/logout")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_every_page_has_the_security_headers(app):
    client = app.test_client()
    login(client, "spec")
    for path in ("/login", "/", "/static/css/app.css", "/no-such-page"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
    assert client.get("/").headers["Cache-Control"] == "no-store"


def test_unknown_pages_are_a_404_page_and_unknown_api_paths_json(app):
    client = app.test_client()
    login(client, "spec")
    page = client.get("/no-such-page")
    assert page.status_code == 404 and "Not found" in page.get_data(as_text=True)
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.is_json


def test_forms_without_the_csrf_token_are_refused(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'csrf.db'}",
            "SECRET_KEY": "test",
            "WTF_CSRF_ENABLED": True,
        }
    )
    with app.app_context():
        init_database()
    response = login(app.test_client(), "spec")
    assert response.status_code == 400
    assert "The form had expired" in response.get_data(as_text=True)
    with app.app_context():
        db.engine.dispose()


def test_the_login_page_carries_a_csrf_token(app):
    page = app.test_client().get("/login").get_data(as_text=True)
    assert 'name="csrf_token"' in page
