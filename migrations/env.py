"""Alembic's environment for casemgr (Flask-Migrate): `flask db upgrade`, `flask db migrate`.

Changed from Flask-Migrate's template in three ways: logging is configured from alembic.ini
only when nothing configured it yet (so `init-db` inside a worker or a test keeps their
logging), the app's UTC column type is written as a plain DateTime (a migration must not
import application code that may change later), and kombu's broker tables are ignored in
case the SQLAlchemy broker shares the database.
"""

import logging
from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context
from flask import current_app

config = context.config
if config.config_file_name and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

IGNORED_TABLES = {"kombu_message", "kombu_queue"}


def get_engine():
    return current_app.extensions["migrate"].db.engine


config.set_main_option(
    "sqlalchemy.url", get_engine().url.render_as_string(hide_password=False).replace("%", "%%")
)
target_db = current_app.extensions["migrate"].db


def get_metadata():
    if hasattr(target_db, "metadatas"):
        return target_db.metadatas[None]
    return target_db.metadata


def render_item(type_, obj, autogen_context):
    """UTCDateTime is a DateTime in the database; write it so."""
    if type_ == "type" and isinstance(obj, sa.types.TypeDecorator):
        impl = obj.impl if isinstance(obj.impl, sa.types.TypeEngine) else obj.impl()
        if isinstance(impl, sa.DateTime):
            return "sa.DateTime()"
    return False


def include_object(obj, name, type_, reflected, compare_to):
    return not (type_ == "table" and name in IGNORED_TABLES)


def run_migrations_offline():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=get_metadata(),
        literal_binds=True,
        render_item=render_item,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def process_revision_directives(context, revision, directives):
        """No empty revision when autogenerate finds no change."""
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    conf_args.setdefault("render_item", render_item)
    conf_args.setdefault("include_object", include_object)

    with get_engine().connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _foreign_keys(connection, on=False)
        try:
            context.configure(connection=connection, target_metadata=get_metadata(), **conf_args)
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    _check_foreign_keys(connection)
        finally:
            if sqlite:
                _foreign_keys(connection, on=True)


def _foreign_keys(connection, on: bool) -> None:
    """SQLite alters a table by copying it to a new one and dropping the old (batch mode).
    With foreign keys enforced, that DROP deletes the rows of every table that references
    the old one ON DELETE CASCADE (every user's roles, tokens and notices when `users` is
    altered) or fails outright. So they are off while migrating (the pragma has no effect
    inside a transaction: it is set before one begins) and checked before the commit."""
    connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    connection.commit()


def _check_foreign_keys(connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the migration left rows with broken references: {broken[:5]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
