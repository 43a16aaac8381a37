"""Settings from the environment; SQLite in the instance folder by default."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _default_secret(instance_path: str) -> str:
    """Keep one random secret per instance so sessions survive restarts in dev."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    return key


def load_config(instance_path: str) -> dict:
    db_url = os.environ.get("DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'casemgr.db'}"
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY") or _default_secret(instance_path),
        "SQLALCHEMY_DATABASE_URI": db_url,
        # Only a server can drop a pooled connection; a ping per checkout (two a request)
        # buys nothing on an SQLite file (casemgr.create_app leaves it out there).
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "WORKFLOWS_DIR": os.environ.get(
            "CASEMGR_WORKFLOWS_DIR", str(Path(__file__).resolve().parent.parent / "workflows")
        ),
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", ""),
        "MAX_CONTENT_LENGTH": int(os.environ.get("CASEMGR_MAX_UPLOAD", 10 * 1024 * 1024)),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Cookies are Secure whenever the request came over HTTPS (casemgr.web.cookies);
        # CASEMGR_SECURE_COOKIES=1 forces it behind a TLS proxy that forwards plain HTTP.
        "SESSION_COOKIE_SECURE": os.environ.get("CASEMGR_SECURE_COOKIES", "0") == "1",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": os.environ.get("CASEMGR_SECURE_COOKIES", "0") == "1",
        # Failed log-ins: per address (Flask-Limiter) and per account (lockout).
        "LOGIN_RATE_LIMIT": os.environ.get("CASEMGR_LOGIN_RATE_LIMIT", "10 per minute"),
        "LOGIN_LOCKOUT_THRESHOLD": int(os.environ.get("CASEMGR_LOCKOUT_THRESHOLD", "5")),
        "LOGIN_LOCKOUT_MINUTES": int(os.environ.get("CASEMGR_LOCKOUT_MINUTES", "15")),
        # memory:// counts per process; give redis://… so gunicorn's workers share one count.
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        # Proxies in front that set X-Forwarded-For/-Proto: without this, behind nginx every
        # visitor has the proxy's address (one shared login limit) and no request is HTTPS.
        "PROXY_HOPS": int(os.environ.get("CASEMGR_PROXY_HOPS", "0")),
        "RATELIMIT_HEADERS_ENABLED": True,
        # Redis down: count in this process rather than refuse every log-in with a 500.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "SCRIPT_TIME_LIMIT": float(os.environ.get("CASEMGR_SCRIPT_TIME_LIMIT", "1.0")),
        "WTF_CSRF_TIME_LIMIT": None,
        # E-mail (casemgr.notify.mail); each also read as CASEMGR_<name>.
        "SMTP_HOST": _env("SMTP_HOST"),
        "SMTP_PORT": int(_env("SMTP_PORT") or 25),
        "SMTP_USERNAME": _env("SMTP_USERNAME") or _env("SMTP_USER"),
        "SMTP_PASSWORD": _env("SMTP_PASSWORD"),
        "SMTP_STARTTLS": _env("SMTP_STARTTLS").lower() in ("1", "true", "yes")
        or _env("SMTP_SECURITY").lower() == "starttls",
        "MAIL_FROM": _env("MAIL_FROM"),
    }


def _env(name: str) -> str:
    """A setting by its own name or with the CASEMGR_ prefix (casemgr.background.mail's)."""
    return os.environ.get(name) or os.environ.get(f"CASEMGR_{name}", "")
