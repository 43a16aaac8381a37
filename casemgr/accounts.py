"""Creating users and API tokens; shared by the CLI, demo data and tests."""

from __future__ import annotations

from casemgr.extensions import db
from casemgr.models import ROLES, ApiToken, Role, User


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
