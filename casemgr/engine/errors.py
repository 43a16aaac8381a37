"""Errors the engine raises, each carrying the HTTP status the API contract gives it."""

from __future__ import annotations


class EngineError(Exception):
    status = 400

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors


class NotFound(EngineError):
    status = 404


class Forbidden(EngineError):
    status = 403


class Conflict(EngineError):
    status = 409


class Invalid(EngineError):
    status = 422


class CaseBroken(EngineError):
    """A script or expression failed: the step is rolled back and the case flagged."""

    status = 422
