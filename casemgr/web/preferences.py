"""Each person's notification preferences: per kind, in the app and/or by e-mail.

A posted value outside the offered choices is the page again with an error (422): the form
is the only client, so that means a tampered or stale page, never a reason for a 500.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from casemgr.extensions import db
from casemgr.notify.prefs import EMAIL_MODES, KINDS, Choice, choices_for, save_choices
from casemgr.web.helpers import require_login, user

bp = Blueprint("preferences", __name__)
require_login(bp)


@bp.get("/preferences")
def index():
    me = user()
    return _page(choices_for([me.id])[me.id])


@bp.post("/preferences")
def save():
    me = user()
    choices: dict[str, Choice] = {}
    errors: list[str] = []
    for kind, label in KINDS.items():
        email = request.form.get(f"{kind}-email", "none")
        if email not in EMAIL_MODES:
            errors.append(f"“{label}”: choose one of the e-mail options offered.")
            email = "none"
        choices[kind] = Choice(in_app=f"{kind}-in_app" in request.form, email=email)
    if errors:
        return _page(choices, errors), 422
    save_choices(me.id, choices)
    db.session.commit()
    flash("Your notification preferences are saved.", "success")
    return redirect(url_for(".index"))


def _page(choices: dict[str, Choice], errors: list[str] | None = None) -> str:
    return render_template(
        "preferences/index.html",
        kinds=KINDS,
        modes=EMAIL_MODES,
        choices=choices,
        errors=errors or [],
        email=(user().email or "").strip(),
    )
