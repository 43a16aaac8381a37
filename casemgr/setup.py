"""Creating the schema and loading the seed diagrams: what `flask init-db` does."""

from __future__ import annotations

from casemgr.accounts import ensure_roles
from casemgr.engine.processes import load_seed_workflows
from casemgr.extensions import db


def init_database() -> list[str]:
    """Safe to run twice: creates what is missing, publishes diagrams not yet loaded."""
    db.create_all()
    ensure_roles()
    loaded = load_seed_workflows()
    db.session.commit()
    return loaded
