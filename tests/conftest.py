"""Fixtures shared by the tests: database backends (SQLite and a real PostgreSQL server), Chromium
for the browser tests, and the http and sessions fixtures of the API tests (each module defines its
own `server`, a ServiceProcess)."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from app.core.db import make_engine, make_session_factory, run_migrations
from app.testing_postgres import PostgresServer

# Each test worker's own estimates take their share of the cores, not all of them (the rule the
# service's workers follow): two workers each running two torch threads on two cores spent a
# quarter more CPU for the same tests.
if os.environ.get("PYTEST_XDIST_WORKER"):
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ.setdefault("EPIPLEX_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))

# Every test that takes a database runs once per backend; `pytest -m postgres` picks the PostgreSQL half.
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


# The longest files, started first in this order (the browser tests last of them, giving
# Chromium's install time): pytest-xdist, told not to reorder (pyproject), hands files to its
# workers in collection order, and one of these started late ran on alone while the other
# worker sat idle. Reordered by test count, laws and soak went to one worker, last.
LONGEST_FILES = ("test_laws.py", "test_soak.py", "test_browser.py")


def pytest_collection_modifyitems(items):
    """The longest files first, and each item's name in its node id. Schemathesis names an
    operation's item `test[GET /path]` but leaves every one the function's id, and
    pytest-xdist, which tracks tests by id, ran one of the 21 operations."""
    first = {name: rank for rank, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: first.get(item.path.name, len(first)))  # stable: files stay whole
    for item in items:
        if item.nodeid.rpartition("::")[2] != item.name:
            item._id = item.parent.id.child(item.name)  # how pytest makes a node's id


_scheduled: list[str] = []  # with pytest-xdist: every test handed to a worker, and
_reported: list[str] = []  # every test a worker reported an outcome for


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    _scheduled[:] = ids


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":  # a failed or skipped setup too
        _reported.append(report.nodeid)


def pytest_sessionfinish(session):
    """A worker that loses tests must fail the run: xdist itself reported 707 passed of 727 and
    exited 0 when 20 never ran."""
    missing = set(_scheduled) - set(_reported)
    if _scheduled and (missing or len(_reported) < len(_scheduled)) and session.exitstatus == 0:
        session.exitstatus = 1
        print(f"\n{len(_scheduled) - len(_reported)} collected tests never reported an outcome"
              + (f": {sorted(missing)[:20]}" if missing else " (they share a node id)"))


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_INSTALL = "apt-get update && apt-get install -y --no-install-recommends chromium"
CHROMIUM_LOCK = Path(tempfile.gettempdir()) / "epiplex-chromium-install.lock"  # one apt per machine
_chromium_install: tuple[subprocess.Popen, Path] | None = None  # (apt, its log), once started


def pytest_collection_finish(session):
    """Start installing Chromium as soon as browser tests are collected and it is missing: apt
    waits mostly on disk and network, so it runs beside the CPU-bound tests instead of before
    the browser tests (137 s of a CI run when they waited for it)."""
    global _chromium_install
    wanted = any(item.get_closest_marker("browser") for item in session.items)
    if wanted and not CHROMIUM.exists() and os.geteuid() == 0 and shutil.which("apt-get") \
            and shutil.which("flock"):
        log = Path(tempfile.mkstemp(prefix="chromium-install-", suffix=".log")[1])
        # each test worker collects every test; the first to take the lock installs
        apt = subprocess.Popen(["flock", str(CHROMIUM_LOCK), "sh", "-c",
                                f"test -x {CHROMIUM} || ({CHROMIUM_INSTALL})"], stdout=log.open("w"),
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        _chromium_install = apt, log


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed with apt when missing (the README's test command does all
    set-up): a failure with the way to install it by hand, never a skip."""
    if _chromium_install:
        apt, log = _chromium_install
        if apt.wait(timeout=900) != 0:
            pytest.fail(f"installing Chromium failed (`{CHROMIUM_INSTALL}` exited {apt.returncode}): "
                        f"{log.read_text()[-2000:]}\nInstall it by hand: {CHROMIUM_INSTALL}")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing and cannot be installed here (needs root, apt-get "
                    f"and flock): run `{CHROMIUM_INSTALL}`")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the whole session, started from the machine's binaries."""
    with PostgresServer() as server:
        yield server


def fresh_database(request, backend: str, directory):
    """Yields the URL of a new, empty database of `backend` (a file in `directory` for SQLite)."""
    if backend != "postgres":
        yield f"sqlite:///{directory / 'epiplex.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    server.drop_database(url)


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """A fresh empty database for one test, once per backend."""
    yield from fresh_database(request, request.param, tmp_path)


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(request, tmp_path_factory):
    """A fresh empty database shared by one module's tests (its server), once per backend."""
    yield from fresh_database(request, request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture()
def db(database_url):
    """A session factory on a fresh database migrated to head, once per backend."""
    engine = make_engine(database_url)
    run_migrations(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture()
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def sessions(server):
    """A session factory on the server's own database, to arrange states directly."""
    engine = make_engine(server.database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """One real S3-compatible server (moto) for the whole session, on 127.0.0.1."""
    from s3server import MotoServer  # tests/ is on sys.path (conftest.py lives there)

    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log").start()
    server.use_credentials()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ray_cluster():
    """One real local Ray cluster (2 CPUs, no dashboard) for the whole session, owned by this process."""
    try:
        import ray
    except ImportError as error:
        raise RuntimeError("ray is not installed: install the test extra (pip install -e '.[test]')") from error
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
