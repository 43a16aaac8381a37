"""The web layer: thin blueprints over the engine and the ledger."""

from __future__ import annotations

from flask import Flask


def register_web(app: Flask) -> None:
    from casemgr.web.api import register_api

    register_api(app)
