"""The migrations build exactly the schema the models describe, and init-db uses them.

The test suite's template database is made with create_all (faster); these tests are what
makes that safe: a model changed without a migration fails here with the difference.
"""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade
from sqlalchemy import inspect, text

from casemgr import create_app
from casemgr.accounts import create_user, find_user, issue_token
from casemgr.engine.cases import start_case
from casemgr.extensions import db
from casemgr.models import Notification, SavedView
from casemgr.notify.prefs import Choice, save_choices
from casemgr.setup import MIGRATIONS_DIR, init_database
from tests.credit_data import INTAKE


def migrated_app(path, **config):
    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
            "SECRET_KEY": "test",
            "SCHEMA_FROM_MIGRATIONS": True,
            **config,
        }
    )


def schema_differences() -> list:
    """What alembic's autogenerate would still add or change: nothing, when in step."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_object": lambda _o, name, type_, *_a: (
                    not (type_ == "table" and name in {"kombu_message", "kombu_queue"})
                ),
            },
        )
        return compare_metadata(context, db.metadata)


@pytest.fixture
def migrated(tmp_path):
    app = migrated_app(tmp_path / "migrated.db")
    with app.app_context():
        init_database()
        yield app
        db.session.remove()
        db.engine.dispose()


def test_the_migrations_create_the_schema_of_the_models(migrated):
    differences = schema_differences()
    assert differences == [], (
        "models and migrations differ; run `flask --app casemgr db migrate -m '…'` and check "
        f"the new file in migrations/versions: {differences}"
    )


def test_init_db_records_the_newest_revision_and_is_safe_to_run_twice(migrated):
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    with db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head
    assert init_database() == []  # nothing new to load, no error
    assert schema_differences() == []


def test_there_is_one_line_of_migrations():
    """Two engineers adding a migration each from the same parent make two heads."""
    heads = ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()
    assert len(heads) == 1, f"several migration heads {heads}: run `flask db merge heads`"


def test_a_database_made_before_migrations_existed_is_adopted(tmp_path):
    path = tmp_path / "legacy.db"
    legacy = create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SECRET_KEY": "t"}
    )
    with legacy.app_context():
        db.create_all()  # what init-db did before there were migrations
        db.engine.dispose()
    app = migrated_app(path)
    with app.app_context():
        init_database()
        assert "alembic_version" in inspect(db.engine).get_table_names()
        assert schema_differences() == []
        db.engine.dispose()


def test_the_migrations_go_down_to_nothing_and_up_again(migrated):
    db.session.remove()
    downgrade(directory=str(MIGRATIONS_DIR), revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    init_database()
    assert schema_differences() == []


ROWS_IN_USE = (
    "users",
    "user_roles",
    "api_tokens",
    "notifications",
    "notification_preferences",
    "saved_views",
    "cases",
    "tasks",
    "case_events",
)


def _row_counts() -> dict[str, int]:
    with db.engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in ROWS_IN_USE}


def test_migrating_a_database_in_use_keeps_every_row(migrated):
    """SQLite alters a table by rebuilding it; with foreign keys on, dropping the old users
    table deleted every user's roles, tokens, notices, preferences and saved views (found
    upgrading a demo database through the login-lockout revision)."""
    spec = create_user("spec", ["ar_specialist", "sales_rep"], "a-long-password-1")
    issue_token(spec)
    save_choices(spec.id, {"task": Choice(in_app=True, email="now")})
    db.session.add(SavedView(name="mine", owner_id=spec.id, params={"q": "x"}))
    db.session.commit()
    case = start_case("credit_application", dict(INTAKE), spec)
    db.session.add(Notification(user_id=spec.id, kind="task", message="hello", case_id=case.id))
    db.session.commit()
    before = _row_counts()
    assert all(before.values()), before
    db.session.remove()
    first_release = ScriptDirectory(str(MIGRATIONS_DIR)).get_base()
    downgrade(directory=str(MIGRATIONS_DIR), revision=first_release)
    assert _row_counts() == before
    init_database()  # and up again, through every revision
    assert _row_counts() == before
    assert find_user("spec").role_keys == {"ar_specialist", "sales_rep"}
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1  # on again after
