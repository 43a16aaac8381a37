"""Flask CLI commands (API.md, "Command line")."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from flask import Flask
from flask.cli import AppGroup

from casemgr.accounts import create_user, find_user, issue_token
from casemgr.extensions import db
from casemgr.models import ROLES, User

users_cli = AppGroup("users", help="Manage users and API tokens.")
timers_cli = AppGroup("timers", help="Wake cases whose timers are due.")


@click.command("init-db")
def init_db_command() -> None:
    """Create the schema and load every diagram in workflows/ as version 1 (idempotent)."""
    from casemgr.setup import init_database

    loaded = init_database()
    click.echo(f"Database ready; loaded case types: {', '.join(loaded) if loaded else 'none new'}")


@click.command("demo")
def demo_command() -> None:
    """Add demo users for every role and a sample ledger; print the logins."""
    from casemgr.demo import DEMO_PASSWORD, load_demo

    created = load_demo()
    click.echo(f"Demo users (password for all: {DEMO_PASSWORD}):")
    for username, roles in created:
        click.echo(f"  {username:<10} {', '.join(roles)}")


@users_cli.command("create")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(list(ROLES)))
@click.option("--password", required=True)
@click.option("--display-name", default="")
@click.option("--email", default=None)
def users_create(
    name: str, roles: tuple[str, ...], password: str, display_name: str, email: str | None
) -> None:
    """Add a user with one or more roles."""
    try:
        create_user(name, list(roles), password, display_name=display_name, email=email)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"created {name} with roles {', '.join(roles)}")


def _existing_user(name: str) -> User:
    """The user called NAME, or the command stops with a clear message."""
    user = find_user(name)
    if user is None:
        raise click.ClickException(f"no user {name!r}")
    return user


@users_cli.command("token")
@click.argument("name")
def users_token(name: str) -> None:
    """Print a new API token for NAME (alone on the last line)."""
    user = _existing_user(name)
    token = issue_token(user)
    db.session.commit()
    click.echo(f"New API token for {name} (store it now; it is not shown again):")
    click.echo(token)


@users_cli.command("revoke-tokens")
@click.argument("name")
def users_revoke_tokens(name: str) -> None:
    """Revoke every API token of NAME (they answer 401 from now on)."""
    from casemgr.accounts import revoke_tokens

    user = _existing_user(name)
    count = revoke_tokens(user)
    db.session.commit()
    click.echo(f"revoked {count} token(s) of {name}")


@users_cli.command("locked")
def users_locked() -> None:
    """List the accounts locked after too many failed log-ins."""
    from casemgr.accounts import locked_users

    rows = locked_users()
    if not rows:
        click.echo("no locked accounts")
    for user in rows:
        until = user.locked_until.strftime("%Y-%m-%d %H:%M UTC") if user.locked_until else ""
        click.echo(f"{user.username:<20} {user.failed_logins} failed, locked until {until}")


@users_cli.command("unlock")
@click.argument("name")
def users_unlock(name: str) -> None:
    """Let NAME log in again at once (clears the failed log-in count)."""
    from casemgr.accounts import unlock

    user = _existing_user(name)
    unlock(user)
    db.session.commit()
    click.echo(f"unlocked {name}")


def _parse_moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO date or datetime") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@timers_cli.command("run")
@click.option("--as-of", "as_of", default=None, help="ISO datetime (UTC unless it has a zone)")
def timers_run(as_of: str | None) -> None:
    """Wake every case with a timer due at that moment (default: now)."""
    from casemgr.engine.cases import run_due_timers

    advanced = run_due_timers(_parse_moment(as_of))
    click.echo(f"advanced {advanced} case(s)")


def register_cli(app: Flask) -> None:
    from flask_migrate import Migrate

    from casemgr.setup import MIGRATIONS_DIR

    Migrate(app, db, directory=str(MIGRATIONS_DIR))  # `flask db upgrade`, `flask db migrate`
    app.cli.add_command(init_db_command)
    app.cli.add_command(demo_command)
    app.cli.add_command(users_cli)
    app.cli.add_command(timers_cli)
    from casemgr.ledger.commands import ledger_cli

    app.cli.add_command(ledger_cli)
    from casemgr.notify import register as register_notify

    register_notify(app)
