"""API v1 (../shared/API.md): bearer tokens, JSON bodies, the contract's status codes."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def register_api(app) -> None:
    from casemgr.extensions import csrf
    from casemgr.web.api import (  # noqa: F401
        attachments,
        cases,
        errors,
        ledger,
        openapi,
        payments,
        process_drafts,
        processes,
        tasks,
        worklist,
    )

    csrf.exempt(bp)
    app.register_blueprint(bp)
