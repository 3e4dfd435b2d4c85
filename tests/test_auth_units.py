"""Units of access control: loopback names, the Host header, and migration 0003 keeping old rows
public and ownerless while dedup becomes per owner."""
from __future__ import annotations

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.auth.access import OPEN, Caller, Forbidden, check_admin, check_may_change
from app.auth.loopback import host_name, is_loopback
from app.core.db import MIGRATIONS_DIR, make_engine


@pytest.mark.parametrize("host,loopback", [
    ("127.0.0.1", True), ("127.8.0.2", True), ("localhost", True), ("LOCALHOST", True), ("::1", True),
    ("[::1]", True), ("app.localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.4", False),
    ("localhost.attacker.example", False), ("example.com", False), ("", False)])
def test_loopback_names(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("header,name", [("127.0.0.1:8000", "127.0.0.1"), ("localhost", "localhost"),
                                         ("[::1]:8000", "::1"), ("[::1]", "::1"), ("evil.example:80", "evil.example")])
def test_host_name_drops_the_port(header, name):
    assert host_name(header) == name


def test_owners_and_admins_may_change_others_may_not():
    alice, bob, admin = Caller("key_a", "alice", False, True), Caller("key_b", "bob", False, True), \
        Caller("key_r", "root", True, True)
    check_may_change(alice, "key_a", "it")
    check_may_change(admin, "key_a", "it")
    check_may_change(OPEN, "key_a", "it")  # keys off: everyone may, as before keys existed
    with pytest.raises(Forbidden, match="key 'bob' may not change it"):
        check_may_change(bob, "key_a", "it")
    with pytest.raises(Forbidden):
        check_may_change(Caller(auth_enabled=True), "", "an ownerless dataset")
    with pytest.raises(Forbidden, match="admin key"):
        check_admin(alice, "edit the panel")
    check_admin(admin, "edit the panel")


def test_migration_0003_keeps_old_datasets_public_and_makes_dedup_per_owner(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    row = ("INSERT INTO datasets (id, sha256, format, name, bytes, stored_bytes, created_at{}) "
           "VALUES ('{}', 'abc', 'bytes', 'n', 3, 3, '2026-01-01'{})")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        connection.execute(text(row.format("", "ds_old", "")))
        command.upgrade(config, "head")
        assert connection.execute(text("SELECT owner_id, visibility FROM datasets")).one() == ("", "public")
        connection.execute(text(row.format(", owner_id", "ds_alice", ", 'key_a'")))  # same bytes, other owner
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text(row.format(", owner_id", "ds_alice2", ", 'key_a'")))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        connection.execute(text("DELETE FROM datasets WHERE id = 'ds_alice'"))
        command.downgrade(config, "0002")
        assert connection.execute(text("SELECT id FROM datasets")).scalars().all() == ["ds_old"]
    engine.dispose()


def test_the_github_action_passes_its_api_key_input_to_epiplex_vet_as_EPIPLEX_API_KEY():
    import yaml

    action = yaml.safe_load((MIGRATIONS_DIR.parents[2] / ".github/actions/epiplex-vet/action.yml").read_text())
    assert action["inputs"]["api-key"]["default"] == ""
    vet_step = next(step for step in action["runs"]["steps"] if step.get("id") == "vet")
    assert vet_step["env"]["EPIPLEX_API_KEY"] == "${{ inputs.api-key }}"
    assert "api-key" not in vet_step["run"], "the key must not reach a command line"
