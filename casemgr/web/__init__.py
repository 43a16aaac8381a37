"""The web layer: thin blueprints over the engine and the ledger."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from casemgr.engine.errors import EngineError


def register_web(app: Flask) -> None:
    from casemgr.web import auth, cases, customers, inbox, notifications
    from casemgr.web.api import register_api
    from casemgr.web.helpers import init_templates
    from casemgr.web.security import init_security

    register_api(app)
    init_security(app)
    init_templates(app)
    for module in (auth, inbox, cases, customers, notifications):
        app.register_blueprint(module.bp)
    register_error_pages(app)


def register_error_pages(app: Flask) -> None:
    """Friendly pages for what users can cause; the API blueprint keeps its own JSON errors."""
    from casemgr.extensions import db
    from casemgr.web.helpers import error_page, sentence

    @app.errorhandler(CSRFError)
    def _csrf(_err: CSRFError):
        return error_page(
            400,
            "The form had expired or was sent from another site. "
            "Go back, reload the page and try again.",
        )

    @app.errorhandler(EngineError)
    def _engine(err: EngineError):
        db.session.rollback()
        return error_page(err.status, sentence(err.message))

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        if err.code is None or err.code < 400:
            return err
        # abort(403, description=...) carries our own text; werkzeug's defaults are generic.
        own = err.description if err.description != type(err).description else None
        return error_page(err.code, own)

    @app.errorhandler(500)
    def _server(_err):
        db.session.rollback()
        return error_page(500, "The error was logged. Try again, or tell IT what you did.")
