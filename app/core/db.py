"""Engine and sessions: SQLite in WAL mode by default or PostgreSQL (psycopg 3), schema brought to
head by Alembic; `retry_while_unreachable` rides out a database restart."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TypeVar

import tenacity
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
CONNECT_TIMEOUT_SECONDS = 10
MIGRATION_LOCK_KEY = 0x6570_6970_6C65  # "epiple": any fixed number, the same in every process
# How long a write waits out an unreachable database (a restart takes seconds) before it fails.
UNREACHABLE_RETRY_SECONDS = 60.0

log = logging.getLogger("epiplex.db")
T = TypeVar("T")


def normalize_url(database_url: str) -> str:
    """`postgres://` and `postgresql://` URLs select the psycopg 3 driver (SQLAlchemy would pick psycopg2)."""
    for prefix in ("postgres://", "postgresql://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix):]
    return database_url


SQLITE_POOL_SIZE = 40  # anyio's default limit on threads running sync routes at once


def make_engine(database_url: str) -> Engine:
    """An engine for `database_url`; SQLite connections get WAL, a busy timeout and foreign keys."""
    database_url = normalize_url(database_url)
    if not database_url.startswith("sqlite"):
        # pre-ping: a pooled connection that a server restart cut is replaced before use, not failed.
        return create_engine(database_url, pool_pre_ping=True,
                             connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    # API threads and worker processes share one file: WAL lets readers run beside the writer,
    # and the busy timeout turns brief write contention into a wait instead of an error. The pool
    # holds a connection for each of the API's 40 request threads: with SQLAlchemy's default of 5
    # (plus 10 made and closed again), a busy server waited for connections and reopened them.
    engine = create_engine(database_url, pool_size=SQLITE_POOL_SIZE, max_overflow=10,
                           connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a dataset acknowledged with 201 survives a power cut, not only a process crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def check_reachable(database_url: str) -> None:
    """Connect once; raises `DatabaseUnreachable` with a one-line reason if that fails."""
    try:
        engine = make_engine(database_url)
    except Exception as error:  # a malformed URL or a driver that is not installed
        raise DatabaseUnreachable(f"invalid database URL {_redacted(database_url)}: {_first_line(error)}") from None
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        raise DatabaseUnreachable(f"cannot reach the database at {_redacted(database_url)}: "
                                  f"{_first_line(getattr(error, 'orig', None) or error)}") from None
    finally:
        engine.dispose()


class DatabaseUnreachable(RuntimeError):
    """The service cannot start: its database URL is invalid or nothing answers there."""


def _redacted(database_url: str) -> str:
    try:
        return make_url(normalize_url(database_url)).render_as_string(hide_password=True)
    except Exception:
        return repr(database_url)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _log_retry(state: tenacity.RetryCallState) -> None:
    log.warning("database unreachable; retrying", extra={
        "call": getattr(state.fn, "__name__", "?"), "attempt": state.attempt_number,
        "error": _first_line(state.outcome.exception())})


def retry_while_unreachable(function: Callable[..., T]) -> Callable[..., T]:
    """`function`, called again (backing off up to 2 s) while it raises OperationalError: the
    database restarting, unreachable or (SQLite) locked. Gives up after UNREACHABLE_RETRY_SECONDS.

    Only for functions that are one transaction each, so a retry starts from a clean slate."""
    return tenacity.retry(retry=tenacity.retry_if_exception_type(OperationalError),
                          wait=tenacity.wait_exponential(multiplier=0.1, max=2.0),
                          stop=tenacity.stop_after_delay(UNREACHABLE_RETRY_SECONDS),
                          before_sleep=_log_retry, reraise=True)(function)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session committed on success and rolled back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def run_migrations(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision; safe to call on every start."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch migrations re-create tables on SQLite; with foreign keys on, dropping the old
            # `datasets` would cascade-delete every job. The pragma is ignored inside a transaction.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        with connection.begin():
            if connection.dialect.name == "postgresql":
                # Services starting together against one database: one migrates while the others
                # wait here (the lock ends with the transaction), then find the schema at head.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@cache
def head_revision() -> str | None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()
