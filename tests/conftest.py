"""Fixtures shared by the API tests; each module defines its own `server` (a ServiceProcess)."""
import httpx
import pytest

from app.core.db import make_engine, make_session_factory


@pytest.fixture()
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def sessions(server):
    """A session factory on the server's own database, to arrange states directly."""
    engine = make_engine(f"sqlite:///{server.data_dir / 'epiplex.db'}")
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
