"""casemgr: case management for accounts receivable, on BPMN."""

from __future__ import annotations

import os

from flask import Flask
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

from casemgr.config import load_config
from casemgr.extensions import csrf, db, limiter, login_manager, tune_sqlite


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="static",
    )
    app.config.from_mapping(load_config(app.instance_path))
    if test_config:
        app.config.update(test_config)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
        options.pop("pool_pre_ping", None)
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    if app.config["PROXY_HOPS"]:
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", tune_sqlite)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"

    from casemgr import models  # noqa: F401  (registers the tables)
    from casemgr.cli import register_cli
    from casemgr.web import register_web
    from casemgr.web.cookies import init_cookies

    register_web(app)
    init_cookies(app)
    register_cli(app)
    if (
        os.environ.get("CASEMGR_EMBEDDED_WORKER") == "1"
        and os.environ.get("WERKZEUG_RUN_MAIN") != "false"
    ):
        from casemgr.worker import start_embedded_worker

        start_embedded_worker(app)
    return app
