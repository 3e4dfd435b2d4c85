"""A throwaway PostgreSQL server for tests and the bench: `initdb` + `pg_ctl` in a temp dir.

PostgreSQL refuses to run as root, so as root the binaries run as the `postgres` user
(`runuser -u postgres --`) in a directory that user owns. The server listens on 127.0.0.1 only,
on a free port, with its socket in the same directory; trust authentication for one role.
"""
from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from app.testing import free_port

PG_BIN_DIR = Path(os.environ.get("EPIPLEX_PG_BIN_DIR", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"
ROLE = "epiplex"
# Tests throw every database away: durability only costs time there.
NO_FSYNC = ("-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off")


class PostgresMissing(RuntimeError):
    """The PostgreSQL server binaries are not installed where we look."""


class PostgresServer:
    """One PostgreSQL cluster; `start()` it, hand out fresh databases, `stop()` to remove it all."""

    def __init__(self, durable: bool = False, bin_dir: Path = PG_BIN_DIR) -> None:
        self.durable = durable
        self.bin_dir = Path(bin_dir)
        self.port = 0
        self.dir: Path | None = None
        self._names = itertools.count(1)

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def log_path(self) -> Path:
        return self.dir / "server.log"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3 driver) for one database of this server."""
        return f"postgresql+psycopg://{ROLE}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        missing = [name for name in ("initdb", "pg_ctl", "postgres") if not (self.bin_dir / name).exists()]
        if missing:
            raise PostgresMissing(
                f"PostgreSQL 15 server binaries not found in {self.bin_dir} (missing: {', '.join(missing)}); "
                "install them with `apt-get install -y postgresql-15`")
        self.dir = Path(tempfile.mkdtemp(prefix="epiplex-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, OS_USER, OS_USER)
        self._run("initdb", "-D", str(self.data_dir), "-U", ROLE, "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        self.port = free_port()
        self._pg_ctl("start")
        return self

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"db_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={ROLE} dbname=postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Remove a database made by `create_database`, closing whatever is still connected to it."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={ROLE} dbname=postgres",
                             autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop (dropping every connection, as a crash or an upgrade would), stay down for
        `down_seconds`, and start again on the same port."""
        self._pg_ctl("stop", "-m", "fast")
        time.sleep(down_seconds)
        self._pg_ctl("start")

    def stop(self) -> None:
        if self.dir is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = ["-h 127.0.0.1", f"-p {self.port}", f"-k {self.dir}",
                   *(() if self.durable else NO_FSYNC)]
        self._run("pg_ctl", action, "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-t", "60",
                  "-o", " ".join(options), *extra)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", OS_USER, "--", *command]
        done = subprocess.run(command, cwd=self.dir, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{program} {args[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}\n"
                               f"{self.log_tail()}")

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
