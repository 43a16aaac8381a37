"""Notifications: in the app (the bell) and by e-mail, each as its recipient chooses.

* ``prefs``: the kinds and each person's choice (in-app; e-mail now, hourly, daily, none).
* ``pending``: what a transaction did, collected until it commits.
* ``events``: engine facts and others' notification rows turned into notices at commit;
  ``on_step`` is the engine's hook, ``notify_broken_promise`` the promise review's.
* ``dispatch``: a notice delivered as a Notification row and/or an outbox row.
* ``mail``: the outbox sent over SMTP after commit (``send_pending``), digests.
* ``cli``: ``flask notify send [--digest]``.

Importing the package installs its session hooks (``events`` and ``pending``).
"""

from __future__ import annotations

from flask import Flask

from casemgr.notify.events import notify_broken_promise, on_step
from casemgr.notify.mail import build_digests, send_pending

__all__ = ["build_digests", "notify_broken_promise", "on_step", "register", "send_pending"]


def register(app: Flask) -> None:
    """Add `flask notify …`; importing this package already installed the session hooks,
    so notification rows made anywhere in the app follow their recipients' preferences."""
    from casemgr.notify.cli import notify_cli

    if "notify" not in app.cli.commands:
        app.cli.add_command(notify_cli)
