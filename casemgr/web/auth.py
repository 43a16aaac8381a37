"""Logging in and out (Flask-Login sessions; argon2 password hashes on the user), with a
per-address limit on failed log-ins and a per-account lockout (casemgr.accounts)."""

from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user, login_user, logout_user
from limits import parse as parse_limit
from wtforms import Form, PasswordField, StringField
from wtforms.validators import InputRequired, Length

from casemgr.accounts import LoginResult, check_login
from casemgr.extensions import db, limiter
from casemgr.web.helpers import error_page, safe_next

bp = Blueprint("auth", __name__)

# One message for every failure: it must not tell which user names exist.
INVALID = "Invalid user name or password."
# A locked account says so whatever the password was: it must not confirm a guess.
LOCKED = (
    "This account is locked after too many failed log-ins. "
    "Try again later, or ask an admin to unlock it."
)
TOO_MANY = "Too many failed log-ins from your address. Wait a minute, then try again."


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


def authenticate(username: str, password: str) -> LoginResult:
    """Check the password, counting failures towards the account's lockout."""
    config = current_app.config
    result = check_login(
        username,
        password,
        threshold=config["LOGIN_LOCKOUT_THRESHOLD"],
        period=timedelta(minutes=config["LOGIN_LOCKOUT_MINUTES"]),
    )
    db.session.commit()
    if result.unknown and not _count_unknown_name(username):
        return LoginResult(None, locked=True, unknown=True)
    return result


def _count_unknown_name(username: str) -> bool:
    """A name nobody has is "locked" after as many failures as a real account: otherwise
    the lockout message would tell which names exist. Counted in the log-in limit's store
    (shared by every web process when it is Redis); False once the name is "locked"."""
    config = current_app.config
    allowed = max(config["LOGIN_LOCKOUT_THRESHOLD"] - 1, 1)
    item = parse_limit(f"{allowed} per {config['LOGIN_LOCKOUT_MINUTES']} minutes")
    return limiter.limiter.hit(item, "login-unknown-name", username.strip().lower())


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _failed(response: Response) -> bool:
    """Only failed attempts use up the address's budget: an office behind one address can
    still log everyone in, while password guessing from it is slowed down."""
    return response.status_code != 302


@bp.app_errorhandler(RateLimitExceeded)
def _too_many(_err: RateLimitExceeded):
    return error_page(429, TOO_MANY)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed)
def login():
    target = safe_next(request.args.get("next"), url_for("inbox.index"))
    if current_user.is_authenticated:
        return redirect(target)
    form = LoginForm(formdata=request.form if request.method == "POST" else None)
    if request.method == "POST" and form.validate():
        result = authenticate(form.username.data, form.password.data)
        if result.user is not None:
            session.clear()  # a fresh session for the new identity
            login_user(result.user)
            return redirect(target)
        flash(LOCKED if result.locked else INVALID, "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
