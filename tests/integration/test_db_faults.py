"""PostgreSQL going away under the app: its connection killed mid-request, then the database
refusing connections. Each request caught in it answers 503 with Retry-After, nothing
committed is lost, nothing of the cut step is saved, and the app recovers by itself
(``pool_pre_ping`` replaces dead pooled connections).
"""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.extensions import db
from casemgr.models import Case, CaseEvent, TaskRecord
from casemgr.web.db_errors import RETRY_AFTER_SECONDS
from tests.conftest import PASSWORD
from tests.credit_data import INTAKE, review
from tests.integration.servers import PG_URL


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def admin():
    """A superuser connection to the server's maintenance database, outside the app."""
    with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
        yield conn


def _open_review(app) -> tuple[int, int]:
    with app.app_context():
        case = engine.start_case("credit_application", dict(INTAKE), find_user("rep"))
        return case.id, next(t.id for t in case.tasks if t.state == "open")


def _snapshot(app, case_id: int, task_id: int) -> tuple:
    with app.app_context():
        case = db.session.get(Case, case_id)
        task = db.session.get(TaskRecord, task_id)
        events = db.session.execute(
            db.select(db.func.count(CaseEvent.id)).filter_by(case_id=case_id)
        ).scalar()
        return case.version, case.workflow_json, task.state, task.assignee_id, events


def test_the_apps_connection_killed_mid_step_is_a_503_and_the_retry_works(api, admin):
    app = api.app
    case_id, task_id = _open_review(app)
    before = _snapshot(app, case_id, task_id)
    killed: list[int] = []

    def kill_at_first_write(conn, _cursor, statement, *_args):
        if not killed and statement.lstrip().upper().startswith(("UPDATE", "INSERT")):
            pid = conn.connection.dbapi_connection.info.backend_pid
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            killed.append(pid)

    with app.app_context():
        engine_ = db.engine
    event.listen(engine_, "before_cursor_execute", kill_at_first_write)
    try:
        response = api.as_("spec").post(
            f"/api/v1/tasks/{task_id}/complete", json={"data": review()}
        )
    finally:
        event.remove(engine_, "before_cursor_execute", kill_at_first_write)

    assert killed, "the request never reached a write"
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert "database is unavailable" in response.get_json()["error"]
    assert _snapshot(app, case_id, task_id) == before

    again = api.as_("spec").post(f"/api/v1/tasks/{task_id}/complete", json={"data": review()})
    assert again.status_code == 200
    assert _snapshot(app, case_id, task_id)[2] == "completed"


def test_a_database_refusing_connections_is_503_until_it_is_back(api, admin, pg_url):
    app = api.app
    case_id, task_id = _open_review(app)
    before = _snapshot(app, case_id, task_id)
    name = make_url(pg_url).database
    client = app.test_client()
    assert client.get("/healthz").status_code == 200  # a pooled connection exists now
    person = app.test_client()
    person.post("/login", data={"username": "spec", "password": PASSWORD})
    assert person.get("/").status_code == 200

    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        health = client.get("/healthz")
        step = api.as_("spec").post(f"/api/v1/tasks/{task_id}/complete", json={"data": review()})
        page = person.get("/")
    finally:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

    assert health.status_code == 503 and health.get_json()["database"] == "unreachable"
    assert step.status_code == 503 and step.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert page.status_code == 503 and "Temporarily unavailable" in page.get_data(as_text=True)

    assert client.get("/healthz").status_code == 200
    assert person.get("/").status_code == 200
    assert _snapshot(app, case_id, task_id) == before
    done = api.as_("spec").post(f"/api/v1/tasks/{task_id}/complete", json={"data": review()})
    assert done.status_code == 200
