"""Alembic environment: uses the connection handed over by `opendip.store.db.migrate`,
or `sqlalchemy.url` from alembic.ini / OPENDIP_DB_URL for the command line."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import engine_from_config, pool

from opendip.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = os.environ.get("OPENDIP_DB_URL") or config.get_main_option("sqlalchemy.url")
    engine = engine_from_config(
        {"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
