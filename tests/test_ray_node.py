"""`epiplex worker` and `epiplex serve --executor ray`: the command lines and settings they make."""
from __future__ import annotations

import pytest

from app.cli import build_parser
from app.core.settings import Settings
from app.jobs.node import worker_command


def test_worker_joins_the_head_with_the_resources_asked():
    args = build_parser().parse_args(["worker", "--address", "10.0.0.5:6379", "--num-cpus", "8", "--num-gpus", "1"])
    command = worker_command(args)
    assert command[0].endswith("ray")
    assert command[1:] == ["start", "--address", "10.0.0.5:6379", "--block", "--num-cpus", "8", "--num-gpus", "1"]


def test_worker_needs_the_head_address(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["worker"])
    assert "--address" in capsys.readouterr().err


def test_serve_takes_the_executor_and_ray_address_from_flags_or_environment(monkeypatch):
    args = build_parser().parse_args(["serve", "--executor", "ray", "--ray-address", "ray://head:10001"])
    assert (args.executor, args.ray_address) == ("ray", "ray://head:10001")
    monkeypatch.setenv("EPIPLEX_EXECUTOR", "ray")
    monkeypatch.setenv("EPIPLEX_RAY_ADDRESS", "auto")
    assert (Settings().executor, Settings().ray_address) == ("ray", "auto")
    monkeypatch.setenv("EPIPLEX_EXECUTOR", "dask")
    with pytest.raises(ValueError, match="executor"):
        Settings()
