"""``GET /healthz`` for load balancers and process managers: no login, JSON, fast.

200 when this web process can reach its database, 503 when it cannot (the balancer then
takes the process out of rotation). It checks only what the web process needs to answer
requests; the background work's state is on the admin page, so a dead worker never takes
the web site down with it.
"""

from __future__ import annotations

import time

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from casemgr.extensions import db
from casemgr.web.db_errors import RAW_DRIVER_ERRORS, RETRY_AFTER_SECONDS

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    started = time.perf_counter()
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except (SQLAlchemyError, *RAW_DRIVER_ERRORS) as exc:
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection is gone; the pool discards it
            db.session.close()
        body = {"status": "error", "database": "unreachable", "error": type(exc).__name__}
        response = jsonify(body)
        response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response.headers["Cache-Control"] = "no-store"
        return response
    took = round((time.perf_counter() - started) * 1000, 2)
    response = jsonify({"status": "ok", "database": "ok", "database_ms": took})
    response.headers["Cache-Control"] = "no-store"
    return response
