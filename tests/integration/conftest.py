"""Integration fixtures: real PostgreSQL and Redis, real `celery worker` processes.

Everything under tests/integration is marked ``integration`` and skipped, with the reason,
unless ``TEST_POSTGRES_URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:55432/x``) and
``TEST_REDIS_URL`` (e.g. ``redis://127.0.0.1:56379``) are set, as .ci/run does. With
``CASEMGR_REQUIRE_INTEGRATION=1`` (CI) a missing server fails the run instead.

The ``app`` fixture is overridden here: each test gets its own PostgreSQL database, copied
from a template built once per test process (migrations, seed diagrams, users) with
``CREATE DATABASE … TEMPLATE``, so the API tests re-collected here run on PostgreSQL
unchanged.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from bench.timers import drop_database, recreate_database
from casemgr.accounts import create_user
from casemgr.extensions import db
from casemgr.setup import init_database
from tests.conftest import PASSWORD, PEOPLE
from tests.integration.servers import MISSING, PG_URL, REDIS_URL, REQUIRED, pg_app

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE not in Path(str(item.fspath)).resolve().parents:
            continue
        item.add_marker(pytest.mark.integration)
        if not (PG_URL and REDIS_URL):
            item.add_marker(pytest.mark.skip(reason=MISSING))


def pytest_sessionstart(session):
    if REQUIRED and not (PG_URL and REDIS_URL):
        raise pytest.UsageError(f"CASEMGR_REQUIRE_INTEGRATION=1 but: {MISSING}")


@pytest.fixture(scope="session")
def worker_tag(request) -> str:
    """gw0, gw1 … under xdist; main alone. Keeps databases and Redis DBs apart."""
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


@pytest.fixture(scope="session")
def redis_url(worker_tag) -> str:
    number = 1 + (int(worker_tag[2:]) if worker_tag.startswith("gw") else 8)
    return f"{REDIS_URL.rstrip('/')}/{number}"


@pytest.fixture(scope="session")
def pg_template(worker_tag):
    """A database at the newest migration, with the seed diagrams and a user per role."""
    name = f"casemgr_tpl_{worker_tag}"
    url = recreate_database(PG_URL, name)
    app = pg_app(url, SCHEMA_FROM_MIGRATIONS=True)
    with app.app_context():
        init_database()
        for person, roles in PEOPLE.items():
            create_user(person, roles, PASSWORD, display_name=person.title())
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    yield name
    drop_database(PG_URL, name)


_numbers = itertools.count()


@pytest.fixture
def pg_url(pg_template, worker_tag):
    """A fresh copy of the template for one test; dropped afterwards."""
    name = f"casemgr_t_{worker_tag}_{next(_numbers)}"
    url = recreate_database(PG_URL, name, pg_template)
    yield url
    drop_database(PG_URL, name)


@pytest.fixture
def app(pg_url):
    app = pg_app(pg_url)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
