"""`epiplex worker`: join this machine to the Ray cluster that an `epiplex serve --executor ray`
sends its runs to. It is `ray start --address HEAD --block` with this package's environment,
so the node runs the same code as the service. Each task carries the service's database URL and
blob URL; blobs and saved runs reach the node through the object store, so the node needs only
network access to both and the AWS_* credentials of the bucket in its environment."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path


def worker_command(args: argparse.Namespace) -> list[str]:
    """The `ray start` command line that joins the cluster at `args.address` and blocks."""
    ray = Path(sys.executable).with_name("ray")
    command = [str(ray) if ray.exists() else (shutil.which("ray") or "ray"), "start",
               "--address", args.address, "--block"]
    if args.num_cpus is not None:
        command += ["--num-cpus", str(args.num_cpus)]
    if args.num_gpus is not None:
        command += ["--num-gpus", str(args.num_gpus)]
    return command


def run_worker(args: argparse.Namespace) -> int:
    command = worker_command(args)
    if shutil.which(command[0]) is None and not Path(command[0]).exists():
        print("epiplex worker: the `ray` command is missing; install the ray extra "
              "(pip install 'epiplex[ray]')", file=sys.stderr)
        return 2
    os.execv(command[0], command)  # the node's lifetime is ray's: Ctrl-C stops it
    return 0  # not reached


def add_worker_command(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "worker", help="join this machine to the Ray cluster of an `epiplex serve --executor ray`",
        description="Run a Ray worker node (ray start --block) that takes the training runs of jobs.")
    parser.add_argument("--address", required=True, help="the Ray head, HOST:6379")
    parser.add_argument("--num-cpus", type=int, help="CPUs to offer (default: all of them)")
    parser.add_argument("--num-gpus", type=int, help="GPUs to offer (default: those CUDA sees)")
    parser.set_defaults(func=run_worker)
    return parser
