"""Security headers on every response and the Flask-Login user loader."""

from __future__ import annotations

from flask import Flask, Response, current_app
from flask_login import current_user

from casemgr.extensions import db, login_manager
from casemgr.models import User

# Self only: no inline script or style, no framing, forms post only to this site.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """A deactivated user's session stops working at their next request."""
    if not user_id.isdigit():
        return None
    found = db.session.get(User, int(user_id))
    return found if found is not None and found.active else None


def _secure_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault(
        "Content-Security-Policy", current_app.config.get("CONTENT_SECURITY_POLICY", DEFAULT_CSP)
    )
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    # Pages with case data must not come back from the cache after logout (back button).
    # The page test first: an API answer never touches the session (no "Vary: Cookie").
    if response.mimetype == "text/html" and current_user.is_authenticated:
        headers.setdefault("Cache-Control", "no-store")
    return response


def init_security(app: Flask) -> None:
    login_manager.login_message = "Log in to see that page."
    login_manager.login_message_category = "info"
    app.after_request(_secure_headers)
