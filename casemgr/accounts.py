"""Creating users and API tokens, checking passwords with lockout; shared by the CLI,
the login page, demo data and tests."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

from casemgr.extensions import db
from casemgr.models import ROLES, ApiToken, Role, User

# Defaults for the lockout; the app's LOGIN_LOCKOUT_* settings override them.
LOCKOUT_THRESHOLD = 5
LOCKOUT_PERIOD = timedelta(minutes=15)


def ensure_roles() -> None:
    existing = set(db.session.execute(db.select(Role.key)).scalars())
    for key, name in ROLES.items():
        if key not in existing:
            db.session.add(Role(key=key, name=name))
    db.session.flush()


def create_user(
    username: str,
    roles: list[str],
    password: str,
    display_name: str = "",
    email: str | None = None,
) -> User:
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(unknown)}; known: {', '.join(ROLES)}")
    if db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none():
        raise ValueError(f"user {username!r} already exists")
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    ensure_roles()
    role_rows = db.session.execute(db.select(Role).where(Role.key.in_(roles))).scalars().all()
    user = User(username=username, display_name=display_name or username, email=email)
    user.set_password(password)
    user.roles = list(role_rows)
    db.session.add(user)
    db.session.flush()
    return user


def issue_token(user: User) -> str:
    row, token = ApiToken.issue(user)
    db.session.add(row)
    db.session.flush()
    return token


def find_user(username: str) -> User | None:
    return db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none()


def revoke_tokens(user: User) -> int:
    """Revoke every live token of the user (a leaked token stops working at once)."""
    rows = db.session.execute(
        db.select(ApiToken).filter_by(user_id=user.id, revoked_at=None)
    ).scalars()
    count = 0
    for row in rows:
        row.revoked_at = datetime.now(UTC)
        count += 1
    db.session.flush()
    return count


# --- logging in, with lockout ------------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    """The user when the password was right and the account may log in; `locked` when the
    account refused the attempt whatever the password was."""

    user: User | None
    locked: bool = False
    unknown: bool = False  # no such user: the caller keeps the same count for the name


@cache
def _dummy_hash() -> str:
    return PasswordHasher().hash("not-a-real-password")


def _spend_hash_time(password: str) -> None:
    """Verify against a dummy hash so an unknown user name answers as slowly as a known one."""
    with suppress(VerificationError):
        PasswordHasher().verify(_dummy_hash(), password)


def is_locked(user: User, now: datetime | None = None) -> bool:
    return user.locked_until is not None and user.locked_until > (now or datetime.now(UTC))


def check_login(
    username: str,
    password: str,
    *,
    threshold: int = LOCKOUT_THRESHOLD,
    period: timedelta = LOCKOUT_PERIOD,
    now: datetime | None = None,
) -> LoginResult:
    """Check a password and keep the lockout count: `threshold` wrong passwords in a row lock
    the account for `period`. While locked, even the right password is refused (and the
    password is still hashed, so the answer's timing tells nothing). Caller commits."""
    now = now or datetime.now(UTC)
    found = find_user(username.strip())
    if found is None:
        _spend_hash_time(password)
        return LoginResult(None, unknown=True)
    right = found.check_password(password)
    if is_locked(found, now):
        return LoginResult(None, locked=True)
    if found.locked_until is not None:  # the lock has run out: a fresh count
        found.locked_until = None
        found.failed_logins = 0
    if not right:
        found.failed_logins = (found.failed_logins or 0) + 1
        if found.failed_logins >= threshold:
            found.locked_until = now + period
        db.session.flush()
        return LoginResult(None, locked=found.locked_until is not None)
    if found.failed_logins:
        found.failed_logins = 0
        db.session.flush()
    return LoginResult(found if found.active else None)


def unlock(user: User) -> None:
    """An admin lets a locked-out user try again at once."""
    user.failed_logins = 0
    user.locked_until = None
    db.session.flush()


def locked_users(now: datetime | None = None) -> list[User]:
    query = db.select(User).where(User.locked_until > (now or datetime.now(UTC)))
    return list(db.session.execute(query.order_by(User.username)).scalars())
