"""The web layer: thin blueprints over the engine and the ledger."""

from __future__ import annotations

from flask import Flask, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from casemgr.engine.errors import EngineError
from casemgr.web.db_errors import register_db_errors


def register_web(app: Flask) -> None:
    from casemgr.web import (
        admin,
        auth,
        cases,
        customers,
        dashboard,
        health,
        imports,
        inbox,
        letters,
        notifications,
        preferences,
        processes,
        reports,
        reports_pastdue,
    )
    from casemgr.web.api import register_api
    from casemgr.web.helpers import init_templates
    from casemgr.web.security import init_security

    register_api(app)
    init_security(app)
    init_templates(app)
    for module in (
        auth,
        inbox,
        cases,
        customers,
        notifications,
        reports,
        imports,
        letters,
        admin,
        health,
        reports_pastdue,
        processes,
        dashboard,
        preferences,
    ):
        app.register_blueprint(module.bp)
    register_error_pages(app)
    register_db_errors(app)
    register_ledger_nav(app)


def register_ledger_nav(app: Flask) -> None:
    """Menu entries for the ledger pages that the shared NAV does not give every reader:
    Reports for specialists and sales reps (NAV shows it to managers), Import for importers."""
    from flask_login import current_user

    from casemgr.web.helpers import NAV, user
    from casemgr.web.imports import IMPORT_ROLES
    from casemgr.web.reports import READER_ROLES

    def in_nav(endpoint: str) -> bool:
        return any(
            e == endpoint and (roles is None or user().has_role(*roles)) for e, _, roles in NAV
        )

    def ledger_nav_items() -> list[tuple[str, str]]:
        if not current_user.is_authenticated:
            return []
        me = user()
        items = []
        if me.has_role(*READER_ROLES) and not in_nav("reports.index"):
            items.append((url_for("reports.index"), "Reports"))
        if me.has_role(*IMPORT_ROLES):
            items.append((url_for("imports.index"), "Import"))
        return items

    app.jinja_env.globals["ledger_nav_items"] = ledger_nav_items


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
        from casemgr.engine.timers import flag_damaged

        flag_damaged(err)  # a case whose stored state does not load: flagged for an admin
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
