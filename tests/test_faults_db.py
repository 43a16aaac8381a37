"""The database going away mid-request: a clear 503 with Retry-After, nothing committed lost,
nothing of the failed step half-applied, and the next request works again.

The outage is injected at the driver: from the chosen statement on, SQLite's own
``OperationalError`` is raised where the statement would run (or where the commit would).
tests/integration/test_db_faults.py does the same to a real PostgreSQL connection.
"""

from __future__ import annotations

import sqlite3

import pytest

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.extensions import db
from casemgr.models import Case, CaseEvent, TaskRecord
from casemgr.web.db_errors import RETRY_AFTER_SECONDS
from tests.conftest import PASSWORD
from tests.credit_data import INTAKE, review


class Outage:
    """Makes the database unreachable for the statements ``when`` picks, until ``end()``."""

    def __init__(self, app, when=lambda statement: True, at_commit: bool = False):
        with app.app_context():
            self.dialect = db.engine.dialect
        self.when = when
        self.at_commit = at_commit
        self.hits = 0
        self._saved = {
            name: getattr(self.dialect, name)
            for name in ("do_execute", "do_execute_no_params", "do_commit")
        }
        self.dialect.do_execute = self._execute(self._saved["do_execute"])
        self.dialect.do_execute_no_params = self._execute(self._saved["do_execute_no_params"])
        self.dialect.do_commit = self._commit

    def _fail(self, what: str):
        self.hits += 1
        raise sqlite3.OperationalError(f"unable to open database file ({what})")

    def _execute(self, real):
        def run(cursor, statement, *args):
            if not self.at_commit and self.when(statement.lstrip().upper()):
                self._fail(statement.split()[0])
            return real(cursor, statement, *args)

        return run

    def _commit(self, connection):
        if self.at_commit:
            self._fail("commit")
        return self._saved["do_commit"](connection)

    def end(self):
        for name, real in self._saved.items():
            setattr(self.dialect, name, real)


@pytest.fixture
def outage():
    started: list[Outage] = []

    def start(app, **kw) -> Outage:
        started.append(Outage(app, **kw))
        return started[-1]

    yield start
    for one in started:
        one.end()


def _writes(statement: str) -> bool:
    return statement.startswith(("UPDATE", "INSERT", "DELETE"))


def _snapshot(app, case_id: int, task_id: int) -> tuple:
    with app.app_context():
        case = db.session.get(Case, case_id)
        task = db.session.get(TaskRecord, task_id)
        events = db.session.execute(
            db.select(db.func.count(CaseEvent.id)).filter_by(case_id=case_id)
        ).scalar()
        return case.version, case.workflow_json, case.data, task.state, task.assignee_id, events


def _open_review(app) -> tuple[int, int]:
    with app.app_context():
        case = engine.start_case("credit_application", dict(INTAKE), find_user("rep"))
        return case.id, next(t.id for t in case.tasks if t.state == "open")


def _login(app, name: str):
    client = app.test_client()
    client.post("/login", data={"username": name, "password": PASSWORD})
    return client


@pytest.mark.parametrize("at_commit", [False, True], ids=["at the first write", "at commit"])
def test_an_api_step_cut_off_answers_503_and_leaves_the_case_as_it_was(api, outage, at_commit):
    app = api.app
    case_id, task_id = _open_review(app)
    before = _snapshot(app, case_id, task_id)

    cut = outage(app, when=_writes, at_commit=at_commit)
    response = api.as_("spec").post(f"/api/v1/tasks/{task_id}/complete", json={"data": review()})
    cut.end()

    assert cut.hits >= 1
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    body = response.get_json()
    assert "database is unavailable" in body["error"] and body["retry_after"] == 5
    # The case started before is all there, and no part of the cut step was saved.
    assert _snapshot(app, case_id, task_id) == before

    again = api.as_("spec").post(f"/api/v1/tasks/{task_id}/complete", json={"data": review()})
    assert again.status_code == 200
    assert _snapshot(app, case_id, task_id)[3] == "completed"


def test_a_page_while_the_database_is_down_is_a_plain_503_page(app, outage):
    spec = _login(app, "spec")
    cut = outage(app)
    response = spec.get("/")
    cut.end()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    page = response.get_data(as_text=True)
    assert "Temporarily unavailable" in page and "Nothing from this request was saved" in page
    assert spec.get("/").status_code == 200  # the same session works again


def test_a_form_cut_off_mid_claim_claims_nothing(app, outage):
    case_id, task_id = _open_review(app)
    before = _snapshot(app, case_id, task_id)
    spec = _login(app, "spec")
    cut = outage(app, when=_writes)
    response = spec.post(f"/tasks/{task_id}/claim")
    cut.end()
    assert response.status_code == 503
    assert _snapshot(app, case_id, task_id) == before
    assert spec.post(f"/tasks/{task_id}/claim").status_code == 302
    assert _snapshot(app, case_id, task_id)[4] == find_user_id(app, "spec")


def find_user_id(app, name: str) -> int:
    with app.app_context():
        return find_user(name).id


def test_healthz_says_503_while_the_database_is_down(app, outage):
    client = app.test_client()
    cut = outage(app)
    response = client.get("/healthz")
    cut.end()
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert client.get("/healthz").status_code == 200


def test_other_database_errors_stay_500s(api, outage):
    """Only an unreachable database is a 503: a bug must not hide behind 'try again'."""
    from sqlalchemy.exc import IntegrityError

    api.app.config["PROPAGATE_EXCEPTIONS"] = False

    @api.app.get("/api/v1/_test_integrity")
    def _boom():
        raise IntegrityError("INSERT", {}, Exception("duplicate"))

    assert api.as_("spec").get("/api/v1/_test_integrity").status_code == 500


def test_an_sql_error_on_sqlite_is_a_500_not_an_outage(api, outage):
    """SQLite reports "no such column" as an OperationalError too: that is a defect, not
    a database out of reach, and "try again in 5 seconds" would hide it."""
    from casemgr.extensions import db as database

    api.app.config["PROPAGATE_EXCEPTIONS"] = False

    @api.app.get("/api/v1/_test_bad_sql")
    def _bad_sql():
        database.session.execute(database.text("SELECT no_such_column FROM cases"))

    response = api.as_("spec").get("/api/v1/_test_bad_sql")
    assert response.status_code == 500
    assert "Retry-After" not in response.headers
