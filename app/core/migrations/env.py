"""Alembic environment: uses the connection `app.core.db.run_migrations` hands over, or the ini URL."""
from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from app.core.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    # batch mode lets later migrations ALTER tables on SQLite, which cannot alter in place.
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    _run(config.attributes["connection"])
else:
    engine = engine_from_config(config.get_section(config.config_ini_section, {}),
                                prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
