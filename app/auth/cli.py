"""`epiplex keys create|list|revoke`: manage API keys in the database `epiplex serve` uses."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.core.settings import Settings


def add_data_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="the server's data directory (env EPIPLEX_DATA_DIR; "
                        "EPIPLEX_DATABASE_URL, when set, names the database instead)")


def open_sessions(settings: Settings):
    """A session factory on the service's database, migrated to the newest schema."""
    from app.core.db import make_engine, make_session_factory, run_migrations

    settings.ensure_dirs()
    engine = make_engine(settings.resolved_database_url)
    run_migrations(engine)
    return engine, make_session_factory(engine)


def keys_command(args: argparse.Namespace) -> int:
    from app.auth import keys
    from app.core.errors import ServiceError

    settings = Settings(**({"data_dir": args.data_dir} if args.data_dir is not None else {}))
    engine, sessions = open_sessions(settings)
    try:
        with sessions() as session:
            if args.keys_command == "create":
                new = keys.create_key(session, args.name, admin=args.admin)
                print(f"created {'admin ' if new.admin else ''}key {new.name!r} ({new.id}); keys are now required "
                      "on every /v1 route. It is shown once; send it as Authorization: Bearer KEY or set "
                      "EPIPLEX_API_KEY:", file=sys.stderr)
                print(new.secret)  # alone on the last line of stdout, for $(epiplex keys create ...)
            elif args.keys_command == "list":
                rows = keys.list_keys(session)
                print(f"{'ID':<30} {'NAME':<20} {'ROLE':<6} {'PREFIX':<12} {'CREATED':<20} STATUS")
                for key in rows:
                    status = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
                    print(f"{key.id:<30} {key.name:<20} {'admin' if key.admin else 'user':<6} {key.prefix + '…':<12} "
                          f"{key.created_at:%Y-%m-%d %H:%M:%S}  {status}")
                if not rows:
                    print("(no keys: the service runs without access control on loopback)")
            else:
                key = keys.revoke_key(session, args.key)
                print(f"revoked key {key.name!r} ({key.id}); its datasets and jobs keep it as their owner")
    except ServiceError as error:
        print(f"epiplex keys: {error.detail}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0


def add_keys_command(commands) -> None:
    keys = commands.add_parser("keys", help="create, list and revoke API keys (stored hashed)")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="create a key and print it (alone on the last line)")
    create.add_argument("name", help="a unique name saying who or what uses the key")
    create.add_argument("--admin", action="store_true", help="may see and delete everything and edit the panel")
    add_data_dir_argument(create)
    listing = actions.add_parser("list", help="list keys (never their secrets)")
    add_data_dir_argument(listing)
    revoke = actions.add_parser("revoke", help="revoke a key by id or name")
    revoke.add_argument("key", help="the key's id or name")
    add_data_dir_argument(revoke)
    keys.set_defaults(func=keys_command)


def open_bind_refusal(settings: Settings) -> str | None:
    """Why `serve` must not start: a non-loopback address and no active key, without the opt-out."""
    from app.auth.loopback import is_loopback
    from app.auth.keys import active_key_count

    if is_loopback(settings.host) or settings.insecure_no_auth:
        return None
    engine, sessions = open_sessions(settings)
    try:
        with sessions() as session:
            if active_key_count(session):
                return None
    finally:
        engine.dispose()
    return (f"refusing to serve {settings.host} without an API key: anyone reaching the port could read, delete "
            "and queue anything. Create one first (epiplex keys create NAME --admin), bind 127.0.0.1, or pass "
            "--insecure-no-auth to run open on purpose")
