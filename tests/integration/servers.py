"""Where the integration suite finds its servers, and an app on one of their databases."""

from __future__ import annotations

import os

from casemgr import create_app

PG_URL = os.environ.get("TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
REQUIRED = os.environ.get("CASEMGR_REQUIRE_INTEGRATION") == "1"
MISSING = "set TEST_POSTGRES_URL and TEST_REDIS_URL (as .ci/run does) to run the integration suite"


def pg_app(url: str, **config):
    """The app on PostgreSQL database ``url``, configured as the SQLite tests' app is."""
    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "WTF_CSRF_ENABLED": False,
            "SECRET_KEY": "test",
            **config,
        }
    )
