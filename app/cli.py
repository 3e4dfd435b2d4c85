"""The `epiplex` command: `serve` runs the service; `vet` checks datasets for CI; `score` (from estimators) scores a file locally.

`keys` manages the service's API keys (app.auth)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from app.core.db import DatabaseUnreachable, check_reachable
from app.auth.cli import add_keys_command, open_bind_refusal
from app.auth.loopback import is_loopback
from app.core.settings import Settings
from app.jobs.node import add_worker_command
from app.vet.cli import add_vet_command


def serve(args: argparse.Namespace) -> int:
    """Start the API and the local executor; returns when the server stops."""
    from app.api.serving import reserve_port, serve as serve_api
    from app.core.logs import setup_logging

    overrides = {key: value for key, value in {
        "host": args.host, "port": args.port, "data_dir": args.data_dir, "workers": args.workers,
        "api_processes": args.api_processes, "insecure_no_auth": args.insecure_no_auth or None,
        "executor": args.executor, "ray_address": args.ray_address,
    }.items() if value is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        print(f"epiplex serve: invalid settings:\n{error}", file=sys.stderr)
        return 2
    if refusal := open_bind_refusal(settings):
        print(f"epiplex serve: {refusal}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    settings.ensure_dirs()
    try:  # one line and a non-zero exit, rather than a traceback from inside the server's start-up
        check_reachable(settings.resolved_database_url)
    except DatabaseUnreachable as error:
        print(f"epiplex serve: {error}", file=sys.stderr)
        return 1
    if settings.insecure_no_auth and not is_loopback(settings.host):
        logging.getLogger("epiplex.auth").warning(
            "INSECURE: serving %s with --insecure-no-auth; without API keys anyone who reaches the port may read, "
            "delete and queue anything", settings.host)
    try:
        settings = reserve_port(settings)
    except OSError as error:
        print(f"epiplex serve: cannot listen on {settings.host}:{settings.port}: {os.strerror(error.errno) if error.errno else error}",
              file=sys.stderr)
        return 1
    serve_api(settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="epiplex", description="Epiplexity of datasets: service and tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = Settings.model_fields
    run = commands.add_parser("serve", help="run the API with local workers (SQLite under --data-dir)")
    run.add_argument("--host", help=f"interface to bind (default {defaults['host'].default}, env EPIPLEX_HOST)")
    run.add_argument("--port", type=int, help=f"port (default {defaults['port'].default}, env EPIPLEX_PORT)")
    run.add_argument("--data-dir", type=Path,
                     help=f"database, blobs and job state (default ./{defaults['data_dir'].default}, env EPIPLEX_DATA_DIR)")
    run.add_argument("--workers", type=int,
                     help=f"concurrent worker processes (default {defaults['workers'].default}, env EPIPLEX_WORKERS)")
    run.add_argument("--api-processes", type=int,
                     help=f"processes answering HTTP (default {defaults['api_processes'].default}, "
                     "env EPIPLEX_API_PROCESSES); the first also runs the jobs")
    run.add_argument("--insecure-no-auth", action="store_true",
                     help="serve a non-loopback --host without any API key (anyone reaching it may do anything; "
                     "env EPIPLEX_INSECURE_NO_AUTH)")
    run.add_argument("--executor", choices=["local", "ray"],
                     help=f"where jobs run (default {defaults['executor'].default}, env EPIPLEX_EXECUTOR)")
    run.add_argument("--ray-address",
                     help="Ray cluster for --executor ray: auto, ray://HOST:PORT or local "
                          f"(default {defaults['ray_address'].default}, env EPIPLEX_RAY_ADDRESS)")
    run.set_defaults(func=serve)
    add_worker_command(commands)
    add_keys_command(commands)
    add_vet_command(commands)
    from estimators.cli import add_score_command, add_transfer_command

    add_score_command(commands)
    add_transfer_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from estimators.cli import run_command

    parser = build_parser()
    return run_command(parser.prog, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
