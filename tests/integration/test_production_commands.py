"""The production commands of the README, run for real against PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.timers import drop_database, recreate_database, stop
from casemgr.extensions import db
from tests.integration.servers import PG_URL, pg_app

BIN = Path(sys.executable).parent


def env_for(url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": url, "CASEMGR_EMBEDDED_WORKER": "0"}


def test_two_init_dbs_at_once_on_an_empty_database_both_succeed(worker_tag):
    from tests.test_migrations import schema_differences

    name = f"casemgr_initdb_{worker_tag}"
    url = recreate_database(PG_URL, name)
    try:
        runs = [
            subprocess.Popen(
                [str(BIN / "flask"), "--app", "casemgr", "init-db"],
                env=env_for(url),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=120)[0].decode() for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        assert sum("credit_application" in out for out in outputs) == 1  # loaded once
        app = pg_app(url)
        with app.app_context():
            assert schema_differences() == []
            db.engine.dispose()
    finally:
        drop_database(PG_URL, name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gunicorn_with_several_workers_answers_the_health_check(pg_url, tmp_path):
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}"]
        + ["casemgr:create_app()"],
        env=env_for(pg_url),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server.log = tmp_path / "gunicorn.log"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    body = json.loads(r.read())
                    break
            except OSError:
                assert server.poll() is None, server.log.read_text()
                assert time.monotonic() < deadline, server.log.read_text()
                time.sleep(0.3)
        assert body["status"] == "ok" and body["database"] == "ok"
    finally:
        stop([server])
        log.close()


def _login_attempt(opener, base: str, password: str) -> int:
    """One log-in as a browser makes it: the form (for its CSRF token), then the post."""
    import re
    import urllib.error
    import urllib.parse

    with opener.open(f"{base}/login", timeout=10) as r:
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', r.read().decode()).group(1)
    body = urllib.parse.urlencode(
        {"csrf_token": token, "username": "spec", "password": password}
    ).encode()
    try:
        with opener.open(f"{base}/login", data=body, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


def test_the_login_limit_is_shared_by_all_gunicorn_workers_through_redis(
    pg_url, redis_url, tmp_path
):
    """Per-process counting would give each of the workers its own budget of failures."""
    import http.cookiejar

    port = free_port()
    log = (tmp_path / "gunicorn.log").open("wb")
    env = {
        **env_for(pg_url),
        "RATELIMIT_STORAGE_URI": redis_url,
        "CASEMGR_LOGIN_RATE_LIMIT": "4 per minute",
        "CASEMGR_LOCKOUT_THRESHOLD": "100",  # this test is about the address, not the account
    }
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--workers", "3", "--bind", f"127.0.0.1:{port}"]
        + ["casemgr:create_app()"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server.log = tmp_path / "gunicorn.log"
    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=5).close()
                break
            except OSError:
                assert server.poll() is None, server.log.read_text()
                assert time.monotonic() < deadline, server.log.read_text()
                time.sleep(0.3)
        statuses = [_login_attempt(opener, base, "wrong-password") for _ in range(4)]
        assert statuses == [401] * 4
        # Each attempt is a new connection, so the three workers take turns: were the count
        # kept per process, most of these would still be answered 401 rather than 429.
        after = [_login_attempt(opener, base, "wrong-password") for _ in range(6)]
        assert after == [429] * 6, after
    finally:
        stop([server])
        log.close()
