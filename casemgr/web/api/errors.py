"""API errors as the contract's JSON bodies; never a 500 for anything a client sends."""

from __future__ import annotations

from flask import jsonify
from werkzeug.exceptions import HTTPException

from casemgr.engine.errors import CaseBroken, EngineError
from casemgr.engine.timers import flag_damaged
from casemgr.web.api import bp
from casemgr.web.db_errors import register_db_errors


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: dict | None = None, **extra):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.extra = extra

    def response(self):
        body = {"error": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return jsonify(body), self.status


@bp.errorhandler(ApiError)
def _api_error(err: ApiError):
    return err.response()


@bp.errorhandler(EngineError)
def _engine_error(err: EngineError):
    if isinstance(err, CaseBroken):
        flag_damaged(err)  # e.g. a payment that would have ended a damaged case
    return ApiError(err.status, err.message, err.errors).response()


# A database gone mid-request: 503 with Retry-After and the contract's {"error": …} body.
register_db_errors(bp)


@bp.errorhandler(HTTPException)
def _http_error(err: HTTPException):
    messages = {413: "request body too large", 404: "not found", 405: "method not allowed"}
    return jsonify({"error": messages.get(err.code, err.description)}), err.code
