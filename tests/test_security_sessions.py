"""Sessions and log-ins: rate limit, lockout, cookie flags, headers, password and token storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask_limiter.util import get_qualified_name

from casemgr.accounts import find_user
from casemgr.extensions import LIMITED_ENDPOINTS, db, limiter
from casemgr.models import ApiToken
from casemgr.web.auth import INVALID, LOCKED, TOO_MANY
from tests.conftest import app_from_template

PASSWORD = "correct-horse-1"


def login(client, name: str, password: str = PASSWORD, **kw):
    return client.post("/login", data={"username": name, "password": password}, **kw)


def page(response) -> str:
    return response.get_data(as_text=True)


# --- rate limit per address ---------------------------------------------------------------


def test_failed_logins_from_one_address_are_limited_with_a_clear_page(app):
    assert app.config["LOGIN_RATE_LIMIT"] == "10 per minute"  # the default
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"  # fewer slow argon2 checks in the test
    client = app.test_client()
    for i in range(3):
        assert login(client, f"nobody{i}", "wrong-password").status_code == 401
    refused = login(client, "spec")  # even the right password waits: the address is limited
    assert refused.status_code == 429
    assert TOO_MANY in page(refused)
    assert int(refused.headers["Retry-After"]) > 0
    # Another address is not affected.
    other = login(client, "spec", environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert other.status_code == 302


def test_every_limited_route_is_checked_by_the_limiter(app):
    """Requests to other routes skip the limiter (casemgr.extensions.LIMITED_ENDPOINTS):
    a route given a limit but not named there would never be limited."""
    limited = {
        endpoint
        for endpoint, view in app.view_functions.items()
        if get_qualified_name(view) in limiter._marked_for_limiting
    }
    assert limited == LIMITED_ENDPOINTS


def test_successful_logins_do_not_use_up_the_limit(app):
    """An office behind one address logs many people in within a minute."""
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    client = app.test_client()
    for _ in range(5):
        assert login(client, "spec").status_code == 302
        client.post("/logout")


# --- lockout per account ------------------------------------------------------------------


def fail(client, name: str, times: int) -> None:
    for _ in range(times):
        response = login(client, name, "wrong-password")
        assert response.status_code == 401


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(app):
    client = app.test_client()
    fail(client, "spec", 4)
    fifth = login(client, "spec", "wrong-password")
    assert LOCKED in page(fifth)

    right = login(client, "spec")
    wrong = login(client, "spec", "another-wrong-one")
    assert right.status_code == wrong.status_code == 401
    # The locked answer is the same whether the password was right: it confirms no guess.
    assert LOCKED in page(right) and LOCKED in page(wrong)
    assert INVALID not in page(right)
    assert client.get("/").status_code == 302  # not logged in
    with app.app_context():
        user = find_user("spec")
        assert user.failed_logins == 5
        assert user.locked_until > datetime.now(UTC) + timedelta(minutes=14)
    # Other accounts are untouched.
    assert login(app.test_client(), "spec2").status_code == 302


def test_a_name_nobody_has_locks_like_a_real_account(app):
    """Otherwise "locked" after five tries would tell an attacker which names exist."""
    real, ghost = app.test_client(), app.test_client()
    answers = {}
    for client, name in ((real, "spec"), (ghost, "no-such-person")):
        steps = [login(client, name, "wrong-password") for _ in range(5)]
        answers[name] = [(r.status_code, LOCKED in page(r), INVALID in page(r)) for r in steps]
    assert answers["spec"] == answers["no-such-person"]
    assert answers["spec"][-1] == (401, True, False)
    assert answers["spec"][0] == (401, False, True)
    # Other names, real or not, are not affected.
    other_address = {"REMOTE_ADDR": "10.0.0.9"}  # this one has used up its ten failures
    assert INVALID in page(
        login(app.test_client(), "another-ghost", "wrong-password", environ_base=other_address)
    )


def test_the_lock_runs_out_and_a_good_login_then_starts_a_fresh_count(app):
    app.config["LOGIN_LOCKOUT_THRESHOLD"] = 2
    client = app.test_client()
    fail(client, "spec", 2)
    assert LOCKED in page(login(client, "spec"))
    with app.app_context():
        find_user("spec").locked_until = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    assert login(client, "spec").status_code == 302
    with app.app_context():
        user = find_user("spec")
        assert user.failed_logins == 0 and user.locked_until is None


def test_a_successful_login_resets_the_count(app):
    app.config["LOGIN_LOCKOUT_THRESHOLD"] = 3
    client = app.test_client()
    fail(client, "spec", 2)
    assert login(client, "spec").status_code == 302
    client.post("/logout")
    fail(client, "spec", 2)
    assert login(client, "spec").status_code == 302  # 2 + 2 failures, never 3 in a row


def test_an_admin_sees_and_unlocks_a_locked_account_from_the_command_line(app):
    app.config["LOGIN_LOCKOUT_THRESHOLD"] = 2
    fail(app.test_client(), "mgr", 2)
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["users", "locked"])
    assert listed.exit_code == 0 and "mgr" in listed.output and "2 failed" in listed.output
    unlocked = runner.invoke(args=["users", "unlock", "mgr"])
    assert unlocked.exit_code == 0, unlocked.output
    assert "no locked accounts" in runner.invoke(args=["users", "locked"]).output
    assert login(app.test_client(), "mgr").status_code == 302
    assert runner.invoke(args=["users", "unlock", "nobody"]).exit_code != 0


# --- cookies ------------------------------------------------------------------------------


def session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, response.headers
    return cookies[-1]


def test_the_session_cookie_is_httponly_and_samesite_lax(app):
    cookie = session_cookie(login(app.test_client(), "spec"))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http://127.0.0.1 in development keeps working


def test_the_session_cookie_is_secure_over_https(app):
    client = app.test_client()
    response = login(client, "spec", base_url="https://casemgr.example")
    cookie = session_cookie(response)
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_secure_cookies_can_be_forced_behind_a_tls_proxy(app):
    app.config["SESSION_COOKIE_SECURE"] = True
    assert "Secure" in session_cookie(login(app.test_client(), "spec"))


# --- headers on HTML and API responses ----------------------------------------------------


@pytest.mark.parametrize(
    "path, who",
    [
        ("/login", None),
        ("/cases", "spec"),
        ("/api/v1/tasks", "spec"),
        ("/api/v1/tasks", None),  # a 401 carries them too
        ("/api/v1/openapi.json", None),
    ],
)
def test_html_and_api_responses_carry_the_security_headers(app, api, path, who):
    if path.startswith("/api/"):
        response = (api.as_(who) if who else api).get(path)
    else:
        client = app.test_client()
        if who:
            login(client, who)
        response = client.get(path)
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


# --- what the database holds --------------------------------------------------------------


def test_passwords_are_stored_as_argon2id_hashes(app):
    with app.app_context():
        stored = find_user("spec").password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_the_database_holds_no_plaintext_token(app, api):
    token = api.tokens["spec"]
    with app.app_context():
        raw = db.session.execute(db.text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert all(token not in value for value in raw)
    assert ApiToken.hash(token) in raw


def test_a_revoked_token_is_refused(app, api):
    assert api.as_("spec").get("/api/v1/tasks").status_code == 200
    result = app.test_cli_runner().invoke(args=["users", "revoke-tokens", "spec"])
    assert result.exit_code == 0 and "revoked 1 token" in result.output
    refused = api.as_("spec").get("/api/v1/tasks")
    assert refused.status_code == 401 and refused.is_json
    assert api.as_("spec2").get("/api/v1/tasks").status_code == 200  # others keep working


def test_a_deactivated_users_token_is_refused(app, api):
    with app.app_context():
        find_user("rep").active = False
        db.session.commit()
    assert api.as_("rep").get("/api/v1/tasks").status_code == 401


def test_behind_a_proxy_each_visitor_has_their_own_limit_and_https_is_seen(tmp_path, template_db):
    app = app_from_template(
        template_db, tmp_path / "proxied.db", PROXY_HOPS=1, LOGIN_RATE_LIMIT="2 per minute"
    )
    client = app.test_client()

    def via_proxy(visitor: str, password: str):
        headers = {"X-Forwarded-For": visitor, "X-Forwarded-Proto": "https"}
        return login(client, "spec", password, headers=headers)

    via_proxy("198.51.100.1", "wrong-password")
    via_proxy("198.51.100.1", "wrong-password")
    assert via_proxy("198.51.100.1", PASSWORD).status_code == 429
    response = via_proxy("198.51.100.2", PASSWORD)  # another visitor behind the same proxy
    assert response.status_code == 302
    assert "Secure" in session_cookie(response)  # the proxy said the visitor used HTTPS
    with app.app_context():
        db.engine.dispose()
