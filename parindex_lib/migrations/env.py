"""Alembic environment of the parindex store.

Run programmatically by :meth:`parindex_lib.store.Store.upgrade`, which passes
an open connection in ``config.attributes["connection"]``. Developers can
also run the ``alembic`` command with ``-c parindex_lib/migrations/alembic.ini``
and the database URL in ``PARINDEX_DB``.

Importing this module outside an Alembic run does nothing.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine

from parindex_lib.models import metadata


def _configure(**kwargs: object) -> None:
    context.configure(target_metadata=metadata, compare_type=True, **kwargs)


def _run_with(connection: Connection) -> None:
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def _url(config: object) -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("PARINDEX_DB")  # type: ignore[attr-defined]
    if not url:
        raise RuntimeError("set PARINDEX_DB to the database URL (or run Store.upgrade())")
    return url if "://" in url else f"sqlite:///{os.path.abspath(url)}"


def run() -> None:
    """Run the migrations Alembic asked for, offline (SQL text) or online."""
    config = context.config
    if context.is_offline_mode():
        _configure(url=_url(config), literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    engine = create_engine(_url(config))
    try:
        with engine.begin() as conn:
            _run_with(conn)
    finally:
        engine.dispose()


if hasattr(context, "config"):  # only inside an Alembic run
    run()
