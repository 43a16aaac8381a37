"""A database that goes away mid-request answers 503 with ``Retry-After``, never a 500.

The request's transaction is rolled back (what it changed is not saved; what earlier
requests committed is untouched), the pool drops the dead connection (``pool_pre_ping``
checks the next one), and the person or client is told to try again shortly. The page is
rendered without the site's layout: that layout reads the database (menus, the bell).
"""

from __future__ import annotations

import sqlite3

from flask import Blueprint, Flask, current_app, g, jsonify, request
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from casemgr.extensions import db

RETRY_AFTER_SECONDS = 5
API_MESSAGE = (
    "the database is unavailable; nothing from this request was saved. "
    f"Try again in {RETRY_AFTER_SECONDS} seconds"
)
PAGE_MESSAGE = (
    "The database cannot be reached right now. Nothing from this request was saved; "
    "what was saved before is safe. Try again in a few seconds."
)


def _raw_driver_errors() -> tuple[type[BaseException], ...]:
    """The drivers' own errors, for the rare one raised outside SQLAlchemy's wrapping."""
    errors: list[type[BaseException]] = [sqlite3.OperationalError]
    try:
        import psycopg
    except ImportError:
        pass
    else:
        errors += [psycopg.OperationalError, psycopg.InterfaceError]
    return tuple(errors)


RAW_DRIVER_ERRORS = _raw_driver_errors()


# SQLite raises OperationalError for its SQL errors too ("no such column"): only these are
# the database being out of reach, the rest is a defect and stays a 500.
_SQLITE_OUTAGES = ("locked", "busy", "unable to open", "disk i/o", "readonly", "disk is full")


def is_unavailable(exc: BaseException) -> bool:
    """Connection lost, server gone or refusing, database file locked or unopenable."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, (OperationalError, InterfaceError, *RAW_DRIVER_ERRORS)):
        return False
    driver_error = getattr(exc, "orig", exc)
    if isinstance(driver_error, sqlite3.OperationalError):
        text = str(driver_error).lower()
        return any(marker in text for marker in _SQLITE_OUTAGES)
    return True


def _rollback() -> None:
    """Undo the request's transaction; on a dead connection, drop the session instead."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone; the pool discards it
        db.session.close()


def unavailable_response():
    """The 503: JSON for the API, a plain page for people, both with ``Retry-After``."""
    _rollback()
    # Nothing after this may ask the database who is logged in (the security headers ask
    # current_user): for the rest of this request the user is anonymous (Flask-Login's
    # per-request slot, which it fills only when empty).
    g._login_user = current_app.login_manager.anonymous_user()
    if request.path.startswith("/api/"):
        response = jsonify({"error": API_MESSAGE, "retry_after": RETRY_AFTER_SECONDS})
    else:
        # Not render_template: its context processors load the user (a query) for the layout.
        template = current_app.jinja_env.get_template("errors/unavailable.html")
        response = current_app.make_response(template.render(message=PAGE_MESSAGE, request=request))
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


def _handle(err: BaseException):
    if not is_unavailable(err):
        raise err  # another database error: the ordinary 500 handling
    current_app.logger.warning(
        "database unavailable during %s %s: %s", request.method, request.path, err
    )
    return unavailable_response()


def register_db_errors(target: Flask | Blueprint) -> None:
    """On the app for the pages, and on the API blueprint, whose handlers come first."""
    for error in (DBAPIError, *RAW_DRIVER_ERRORS):
        target.register_error_handler(error, _handle)
