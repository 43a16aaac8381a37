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

    @property
    def flag_message(self) -> str:
        """What an admin reads on the flagged case."""
        return self.message


class CorruptCaseState(CaseBroken, ValueError):
    """A case's stored workflow does not load (bad JSON, wrong structure, unknown spec).

    409, not 422: the request is fine, the case's state is what conflicts with it, and no
    change to the request can help; only an administrator repairing the case can. A
    ValueError too, so code that skips unreadable workflows (migration checks) skips it.
    """

    status = 409
    USER_MESSAGE = "this case's stored state is damaged; an administrator has been alerted"
    FLAG_PREFIX = "stored state is damaged: "

    def __init__(self, reason: str, case_id: int | None = None):
        super().__init__(self.USER_MESSAGE)
        self.reason = reason
        self.case_id = case_id

    @property
    def flag_message(self) -> str:
        return f"{self.FLAG_PREFIX}{self.reason}"[:2000]

    def __str__(self) -> str:  # logs and lists of skipped cases say what is wrong
        return self.flag_message

    @classmethod
    def is_flag(cls, broken: str | None) -> bool:
        return bool(broken) and broken.startswith(cls.FLAG_PREFIX)
