"""Sending one e-mail now: SMTP when a server is configured, else a file in an outbox folder.

The weekly past-due report uses this (notifications go through ``casemgr.notify``'s outbox).
Settings are the app's (``casemgr.config``, each also read as ``CASEMGR_<name>``):
``SMTP_HOST``, ``SMTP_PORT``, ``SMTP_USERNAME``, ``SMTP_PASSWORD``, ``SMTP_STARTTLS`` or
``SMTP_SECURITY=ssl`` (implicit TLS), ``MAIL_FROM``; and ``MAIL_OUTBOX``, the folder used
when no host is set (``instance/outbox`` by default): a development machine then mails
nobody, yet shows exactly what would have been sent.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from flask import current_app


def setting(name: str, default: str = "") -> str:
    """An app setting, else the environment's ``CASEMGR_<name>``, else ``default``."""
    value = current_app.config.get(name)
    if value in (None, "") or isinstance(value, bool):
        value = os.environ.get(f"CASEMGR_{name}", default)
    return str(value)


def _security() -> str:
    """``ssl``, ``starttls`` or ``none``."""
    explicit = setting("SMTP_SECURITY").lower()
    if explicit in ("ssl", "starttls"):
        return explicit
    return "starttls" if current_app.config.get("SMTP_STARTTLS") else "none"


def build_message(to: list[str], subject: str, text: str, html: str | None = None):
    message = EmailMessage()
    message["From"] = setting("MAIL_FROM", "casemgr@localhost")
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="casemgr")
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def send_mail(to: list[str], subject: str, text: str, html: str | None = None) -> str:
    """Send (or file) one message; returns where it went, for the log and the tests."""
    message = build_message(to, subject, text, html)
    host = setting("SMTP_HOST")
    if not host:
        return _to_outbox(message)
    port = int(setting("SMTP_PORT", "25") or 25)
    security = _security()
    user, password = setting("SMTP_USERNAME"), setting("SMTP_PASSWORD")
    context = ssl.create_default_context()
    if security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=30, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=30)
    with client:
        if security == "starttls":
            client.starttls(context=context)
        if user:
            client.login(user, password)
        client.send_message(message)
    return f"smtp://{host}:{port}"


def outbox_folder() -> Path:
    return Path(setting("MAIL_OUTBOX") or Path(current_app.instance_path) / "outbox")


def _to_outbox(message: EmailMessage) -> str:
    folder = outbox_folder()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = folder / f"{stamp}-{os.getpid()}.eml"
    path.write_bytes(bytes(message))
    return str(path)
