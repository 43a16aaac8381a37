"""Session cookies marked Secure whenever the request itself came over HTTPS.

A fixed SESSION_COOKIE_SECURE=True would make `make run` on http://127.0.0.1 unusable (the
browser drops the cookie, log-in silently fails); a fixed False sends the session in clear
text if someone reaches the site over plain HTTP next to HTTPS. Deciding per request gives
Secure on every HTTPS deployment without configuration; CASEMGR_SECURE_COOKIES=1 forces it
where a TLS proxy forwards plain HTTP without ProxyFix.
"""

from __future__ import annotations

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface


class HttpsAwareSessionInterface(SecureCookieSessionInterface):
    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def init_cookies(app: Flask) -> None:
    app.session_interface = HttpsAwareSessionInterface()
