"""`flask notify send`: drain the e-mail outbox by hand or from cron."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from casemgr.notify.mail import send_pending

notify_cli = AppGroup("notify", help="Notifications: send the e-mail outbox.")


@notify_cli.command("send")
@click.option(
    "--digest",
    is_flag=True,
    help="Also gather the hourly and daily digests whose period has ended, and send them.",
)
@click.option("--limit", default=500, show_default=True, type=click.IntRange(1, 100_000))
def send_command(digest: bool, limit: int) -> None:
    """Send pending e-mails; each is sent once, however often or wherever this runs."""
    result = send_pending(limit=limit, digests=digest)
    if result.waiting:
        click.echo(f"SMTP_HOST is not set: {result.waiting} e-mail(s) wait in the outbox.")
    click.echo(f"sent {result.sent}, failed {result.failed}, digests built {result.digests}")
