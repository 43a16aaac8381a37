"""Creating the schema and loading the seed diagrams: what `flask init-db` does."""

from __future__ import annotations

from pathlib import Path

from flask import current_app
from sqlalchemy import inspect

from casemgr.accounts import ensure_roles
from casemgr.engine.processes import load_seed_workflows
from casemgr.extensions import db

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def init_database() -> list[str]:
    """Safe to run twice, and at once on several hosts: migrates the schema, publishes
    diagrams not yet loaded."""
    from casemgr.background.locks import exclusive

    with exclusive("init-db"):
        create_schema()
        ensure_roles()
        loaded = load_seed_workflows()
        db.session.commit()
    return loaded


def create_schema() -> None:
    """Alembic migrations (Flask-Migrate) up to the newest, when the folder exists.

    The test suite builds its template database with create_all (faster; tests/
    test_migrations.py proves the migrations give the same schema) unless a test asks for
    migrations with SCHEMA_FROM_MIGRATIONS. A database made by create_all before migrations
    existed is completed and stamped as current, so `init-db` keeps working on it.
    """
    use_migrations = MIGRATIONS_DIR.is_dir() and (
        not current_app.testing or current_app.config.get("SCHEMA_FROM_MIGRATIONS")
    )
    if not use_migrations:
        db.create_all()
        return
    from flask_migrate import stamp, upgrade

    tables = set(inspect(db.engine).get_table_names())
    if "alembic_version" not in tables and "cases" in tables:
        db.create_all()
        stamp(directory=str(MIGRATIONS_DIR))
        return
    upgrade(directory=str(MIGRATIONS_DIR))
