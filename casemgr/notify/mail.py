"""Sending the e-mail outbox over SMTP, after the transactions that filled it have committed.

``send_pending`` is what the background worker (and ``flask notify send``) calls. It is
idempotent and safe to run in several processes at once: each row is claimed with a
conditional UPDATE (``… WHERE sent_at IS NULL AND claimed_at IS NULL``, committed before
the SMTP conversation), so exactly one sender owns it; a claim left by a sender that died is
taken over only after ``LEASE``. A message's Message-ID derives from its outbox key, so even
that rare re-send after a crash between the SMTP reply and the commit is the same message to
the receiving side, which may drop the copy.

Digests: entries whose period (an hour, a day; UTC) has ended are gathered by
``build_digests`` into one message per person and period.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import smtplib
import ssl
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import formatdate

from flask import current_app
from sqlalchemy import or_, select, update

from casemgr.extensions import db
from casemgr.models import EmailOutbox, User
from casemgr.notify.dispatch import base_url, insert_once

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=15)
MAX_ATTEMPTS = 6
SMTP_TIMEOUT = 30
SUBJECT_PREFIX = "[casemgr] "
# Connection-level failures: the server is away, so the rest of this run would fail too.
_CONNECTION_ERRORS = (OSError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError)


class MailServerDown(Exception):
    """Connecting or logging in failed: the server's or the settings' fault, not a row's."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str
    password: str
    starttls: bool
    sender: str

    @classmethod
    def from_config(cls) -> SmtpSettings:
        config = current_app.config
        try:
            port = int(config.get("SMTP_PORT") or 25)
        except (TypeError, ValueError):
            port = 25
        return cls(
            host=str(config.get("SMTP_HOST") or ""),
            port=port,
            username=str(config.get("SMTP_USERNAME") or ""),
            password=str(config.get("SMTP_PASSWORD") or ""),
            starttls=bool(config.get("SMTP_STARTTLS")),
            sender=str(config.get("MAIL_FROM") or "casemgr@localhost"),
        )


@dataclass(frozen=True)
class SendResult:
    sent: int = 0
    failed: int = 0
    digests: int = 0
    # Rows left unsent because no SMTP_HOST is configured.
    waiting: int = 0


class Mailer:
    """One SMTP connection for a run, opened on first use."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self.client: smtplib.SMTP | None = None

    def send(self, message: EmailMessage) -> None:
        if self.client is None:
            try:
                self.client = self._connect()
            except (smtplib.SMTPException, OSError) as exc:
                raise MailServerDown(f"{type(exc).__name__}: {exc}") from exc
        try:
            self.client.send_message(message)
        except _CONNECTION_ERRORS as exc:
            self.client = None
            raise MailServerDown(f"{type(exc).__name__}: {exc}") from exc

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        if s.port == 465:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                s.host, s.port, timeout=SMTP_TIMEOUT, context=context
            )
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=SMTP_TIMEOUT)
            if s.starttls:
                client.starttls(context=context)
        if s.username:
            client.login(s.username, s.password)
        return client

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (smtplib.SMTPException, OSError):
                self.client.close()
            self.client = None


# Headers up to RFC 5322's 998 characters stay on one line: Python's folding at 78 can
# break right after "Subject:", which some clients then show with a leading space.
POLICY = policy.default.clone(max_line_length=998)


def build_message(row: EmailOutbox, sender: str) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    message["To"] = row.recipient
    message["Subject"] = SUBJECT_PREFIX + row.subject
    message["Date"] = formatdate(localtime=False)
    digest = hashlib.sha256(row.dedupe_key.encode()).hexdigest()[:32]
    domain = sender.rpartition("@")[2] or "casemgr"
    message["Message-ID"] = f"<{digest}@{domain}>"
    message.set_content(row.body)
    return message


def send_pending(
    now: datetime | None = None, *, limit: int = 500, digests: bool = True
) -> SendResult:
    """Send what is due in the outbox (and first gather ended digests); never raises for a
    mail server's failure: the row keeps the error and is retried with backoff."""
    now = now or datetime.now(UTC)
    built = build_digests(now) if digests else 0
    settings = SmtpSettings.from_config()
    ids = _due_ids(now, limit)
    if not settings.host:
        if ids:
            log.warning("SMTP_HOST is not set: %d e-mail(s) wait in the outbox", len(ids))
        return SendResult(digests=built, waiting=len(ids))
    sent = failed = 0
    mailer = Mailer(settings)
    try:
        for row_id in ids:
            outcome = _send_one(row_id, mailer, settings, now)
            sent += outcome == "sent"
            failed += outcome in ("failed", "down")
            if outcome == "down":
                break
    finally:
        mailer.close()
    return SendResult(sent=sent, failed=failed, digests=built)


def _due_ids(now: datetime, limit: int) -> list[int]:
    query = (
        select(EmailOutbox.id)
        .where(
            EmailOutbox.mode == "now",
            EmailOutbox.sent_at.is_(None),
            EmailOutbox.attempts < MAX_ATTEMPTS,
            EmailOutbox.available_at <= now,
            or_(EmailOutbox.claimed_at.is_(None), EmailOutbox.claimed_at < now - LEASE),
        )
        .order_by(EmailOutbox.id)
        .limit(limit)
    )
    ids = list(db.session.execute(query).scalars())
    db.session.commit()  # end the read: each claim below is its own short transaction
    return ids


def _claim(row_id: int, now: datetime) -> str | None:
    """Take the row for this sender: a token when this call won it, None when another did."""
    token = secrets.token_hex(16)
    result = db.session.execute(
        update(EmailOutbox)
        .where(
            EmailOutbox.id == row_id,
            EmailOutbox.sent_at.is_(None),
            or_(EmailOutbox.claimed_at.is_(None), EmailOutbox.claimed_at < now - LEASE),
        )
        .values(claimed_at=now, claim_token=token)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return token if result.rowcount == 1 else None


def _send_one(row_id: int, mailer: Mailer, settings: SmtpSettings, now: datetime) -> str:
    token = _claim(row_id, now)
    if token is None:
        return "taken"
    row = db.session.get(EmailOutbox, row_id, populate_existing=True)
    user = db.session.get(User, row.user_id)
    if user is None or not user.active:
        _give_up(row, "the recipient's account is deactivated")
        return "failed"
    try:
        mailer.send(build_message(row, settings.sender))
    except (ValueError, TypeError, UnicodeError) as exc:  # a malformed address or header
        _failed(row, exc, now, permanent=True)
        return "failed"
    except MailServerDown as exc:
        _failed(row, exc, now, permanent=False)
        return "down"
    except smtplib.SMTPException as exc:
        _failed(row, exc, now, permanent=_is_permanent(exc))
        return "failed"
    row.sent_at = datetime.now(UTC)
    row.last_error = None
    if row.kind == "digest":
        db.session.execute(
            update(EmailOutbox)
            .where(EmailOutbox.batch_id == row.id)
            .values(sent_at=row.sent_at)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    return "sent"


def _is_permanent(exc: smtplib.SMTPException) -> bool:
    """The server refused this message for good (5xx, or every recipient refused)."""
    code = getattr(exc, "smtp_code", None)
    return isinstance(exc, smtplib.SMTPRecipientsRefused) or (isinstance(code, int) and code >= 500)


def _failed(row: EmailOutbox, exc: Exception, now: datetime, *, permanent: bool) -> None:
    """Release the claim and retry later with backoff; a permanent refusal is not retried."""
    row.attempts = MAX_ATTEMPTS if permanent else row.attempts + 1
    row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    row.claimed_at = None
    row.claim_token = None
    row.available_at = now + timedelta(minutes=min(60, 2**row.attempts))
    db.session.commit()
    log.warning("e-mail %s to %s failed: %s", row.id, row.recipient, row.last_error)


def _give_up(row: EmailOutbox, reason: str) -> None:
    row.attempts = MAX_ATTEMPTS
    row.last_error = reason
    row.claimed_at = None
    db.session.commit()


# --- digests ------------------------------------------------------------------------------


def window_start(now: datetime, period: str) -> datetime:
    """The start of the hour or day (UTC) ``now`` is in: entries before it are due."""
    start = now.replace(minute=0, second=0, microsecond=0)
    return start.replace(hour=0) if period == "day" else start


def build_digests(now: datetime | None = None) -> int:
    """One message per person and period for the digest entries of ended periods; returns
    how many digests it made. Concurrent builders cannot take the same entry twice."""
    now = now or datetime.now(UTC)
    entries = db.session.execute(
        select(EmailOutbox)
        .where(EmailOutbox.mode == "digest", EmailOutbox.batch_id.is_(None))
        .order_by(EmailOutbox.user_id, EmailOutbox.id)
    ).scalars()
    groups: dict[tuple[int, str], list[EmailOutbox]] = defaultdict(list)
    for entry in entries:
        period = entry.period if entry.period in ("hour", "day") else "day"
        if entry.created_at < window_start(now, period):
            groups[(entry.user_id, period)].append(entry)
    made = sum(_make_digest(uid, period, rows, now) for (uid, period), rows in groups.items())
    db.session.commit()
    return made


def _make_digest(user_id: int, period: str, rows: list[EmailOutbox], now: datetime) -> int:
    ended = window_start(now, period)
    key = f"digest:u{user_id}:{period}:{ended:%Y%m%dT%H}:{rows[0].id}"
    values = {
        "dedupe_key": key,
        "user_id": user_id,
        "recipient": rows[-1].recipient,
        "kind": "digest",
        "subject": "",
        "body": "",
        "mode": "now",
        "created_at": now,
        "available_at": min(now, datetime.now(UTC)),
        "attempts": 0,
    }
    if not insert_once(values):
        return 0  # another builder made it: its entries are its own
    query = select(EmailOutbox).where(EmailOutbox.dedupe_key == key)
    digest = db.session.execute(query).scalar_one()
    db.session.execute(
        update(EmailOutbox)
        .where(EmailOutbox.id.in_([r.id for r in rows]), EmailOutbox.batch_id.is_(None))
        .values(batch_id=digest.id)
        .execution_options(synchronize_session=False)
    )
    members = list(
        db.session.execute(
            select(EmailOutbox)
            .where(EmailOutbox.batch_id == digest.id)
            .order_by(EmailOutbox.id)
            .execution_options(populate_existing=True)
        ).scalars()
    )
    if not members:
        db.session.delete(digest)
        return 0
    digest.subject = digest_subject(members, period)
    digest.body = digest_body(members, period)
    return 1


def digest_subject(members: list[EmailOutbox], period: str) -> str:
    span = "hourly" if period == "hour" else "daily"
    return f"Your {span} digest: {len(members)} notification{'s' * (len(members) != 1)}"


def digest_body(members: list[EmailOutbox], period: str) -> str:
    lines = [f"{digest_subject(members, period)}.", ""]
    for index, member in enumerate(members, start=1):
        lines.append(f"{index}. {member.subject}")
        first = member.body.split("\n\n", 1)[0].strip()
        if first and first != member.subject:
            lines.append(f"   {first}")
        if member.case_id is not None:
            lines.append(f"   {base_url()}/cases/{member.case_id}")
        lines.append("")
    lines.append(f"Change what you receive: {base_url()}/preferences")
    return "\n".join(lines)
