"""Logging in and out (Flask-Login sessions; argon2 password hashes on the user)."""

from __future__ import annotations

from contextlib import suppress
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from wtforms import Form, PasswordField, StringField
from wtforms.validators import InputRequired, Length

from casemgr.extensions import db
from casemgr.models import User
from casemgr.web.helpers import safe_next

bp = Blueprint("auth", __name__)

# One message for every failure: it must not tell which user names exist.
INVALID = "Invalid user name or password."


class LoginForm(Form):
    username = StringField(
        "User name",
        validators=[InputRequired(), Length(max=80)],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        "Password",
        validators=[InputRequired(), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )


@cache
def _dummy_hash() -> str:
    return PasswordHasher().hash("not-a-real-password")


def _spend_hash_time(password: str) -> None:
    """Verify against a dummy hash so an unknown user name answers as slowly as a known one."""
    with suppress(VerificationError):
        PasswordHasher().verify(_dummy_hash(), password)


def authenticate(username: str, password: str) -> User | None:
    found = db.session.execute(
        db.select(User).filter_by(username=username.strip())
    ).scalar_one_or_none()
    if found is None:
        _spend_hash_time(password)
        return None
    if not found.check_password(password) or not found.active:
        return None
    return found


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = safe_next(request.args.get("next"), url_for("inbox.index"))
    if current_user.is_authenticated:
        return redirect(target)
    form = LoginForm(formdata=request.form if request.method == "POST" else None)
    if request.method == "POST" and form.validate():
        found = authenticate(form.username.data, form.password.data)
        if found is not None:
            session.clear()  # a fresh session for the new identity
            login_user(found)
            return redirect(target)
        flash(INVALID, "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
