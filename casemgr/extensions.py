"""Extension objects, created once and bound to the app in create_app()."""

from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Named constraints keep future Alembic migrations deterministic across databases.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
# No default limits: only the routes that guard secrets (the login form) carry one.
# Storage comes from RATELIMIT_STORAGE_URI (memory:// in one process, redis:// when shared).
limiter = Limiter(key_func=get_remote_address)
# The routes that carry a limit (a new ``@limiter.limit`` route must be named here).
LIMITED_ENDPOINTS = frozenset({"auth.login"})


@limiter.request_filter
def _not_limited() -> bool:
    """Every other request skips the limiter: with no default limits its answer for them is
    always "no limit", and working that out cost ~0.1 ms on every API call."""
    return request.endpoint not in LIMITED_ENDPOINTS


def tune_sqlite(dbapi_connection, _record) -> None:
    """WAL lets readers work during a write; NORMAL sync is safe with WAL and far faster;
    the busy timeout makes a second writer wait instead of failing at once."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
