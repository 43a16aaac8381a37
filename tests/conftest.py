"""Fixtures: an app on a temporary SQLite file, a user for each role, and an API client."""

from __future__ import annotations

import shutil

import pytest

from casemgr import create_app
from casemgr.accounts import create_user, issue_token
from casemgr.extensions import db
from casemgr.setup import init_database

PASSWORD = "correct-horse-1"

# name -> roles. "dual" holds both the specialist and the manager role (four-eyes tests).
PEOPLE = {
    "spec": ["ar_specialist"],
    "spec2": ["ar_specialist"],
    "mgr": ["credit_manager"],
    "mgr2": ["credit_manager"],
    "ctrl": ["controller"],
    "rep": ["sales_rep"],
    "owner": ["process_owner"],
    "admin": ["admin"],
    "dual": ["ar_specialist", "credit_manager"],
}


def _make_app(db_path, **overrides):
    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_path}",
            "WTF_CSRF_ENABLED": False,
            "SECRET_KEY": "test",
            **overrides,
        }
    )


def app_from_template(template_db, path, **overrides):
    """An app on a copy of the template database (users, seed diagrams), with its settings."""
    shutil.copyfile(template_db, path)
    return _make_app(path, **overrides)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory):
    """Schema, seed diagrams and users built once; each test gets a copy of the file."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    app = _make_app(path)
    with app.app_context():
        init_database()
        for name, roles in PEOPLE.items():
            create_user(name, roles, PASSWORD, display_name=name.title())
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return path


@pytest.fixture
def app(tmp_path, template_db):
    app = app_from_template(template_db, tmp_path / "test.db")
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


class ApiClient:
    """Calls the API as one named user: api.as_("mgr").post("/api/v1/...", json=...)."""

    def __init__(self, app, tokens: dict[str, str], who: str | None = None):
        self.app = app
        self.tokens = tokens
        self.who = who
        self.client = app.test_client()

    def as_(self, who: str) -> ApiClient:
        return ApiClient(self.app, self.tokens, who)

    def _headers(self, headers):
        out = dict(headers or {})
        if self.who:
            out.setdefault("Authorization", f"Bearer {self.tokens[self.who]}")
        return out

    def get(self, path, **kw):
        return self.client.get(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, path, **kw):
        return self.client.post(path, headers=self._headers(kw.pop("headers", None)), **kw)


@pytest.fixture
def api(app):
    with app.app_context():
        from casemgr.accounts import find_user

        tokens = {name: issue_token(find_user(name)) for name in PEOPLE}
        db.session.commit()
    return ApiClient(app, tokens)


@pytest.fixture
def ctx(app):
    """An app context for tests that call the engine and ledger directly."""
    with app.app_context():
        yield app
