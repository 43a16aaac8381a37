"""API v1 (../shared/API.md): bearer tokens, JSON bodies, the contract's status codes."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def register_api(app) -> None:
    from casemgr.extensions import csrf
    from casemgr.web.api import cases, errors, ledger, openapi, processes, tasks  # noqa: F401

    csrf.exempt(bp)
    app.register_blueprint(bp)
