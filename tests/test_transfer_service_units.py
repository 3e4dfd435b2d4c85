"""Transfer in the service, part by part: the predictor fitted on rows in the database, the
fenced writes of measured rows, and the migration that adds them."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sqlalchemy import select

from app.core.db import make_engine, run_migrations
from app.core.models import Dataset, Job, TransferRow, utcnow
from app.jobs import store
from app.transfer.report import _ScoredFigures, dataset_transfer, fit_predictor

KEY = "k" * 64
TRANSFER_REVISION = "0002"


@pytest.fixture()
def sessions(db):
    """A fresh migrated database, once on SQLite and once on PostgreSQL (conftest `db`)."""
    return db


def add_dataset(session, name: str, epiplexity_bpb: float | None, panel: bool = False, size: int = 4096) -> str:
    """A dataset and, unless `epiplexity_bpb` is None, a succeeded scoring job with those figures."""
    dataset = Dataset(id=f"ds_{name}", sha256=hashlib.sha256(name.encode()).hexdigest(), format="bytes",
                      name=name, bytes=size, stored_bytes=size, panel_source="builtin" if panel else None)
    session.add(dataset)
    if epiplexity_bpb is not None:
        session.add(Job(id=f"job_{name}", dataset_id=dataset.id, config_key=KEY, score_key=KEY, preset="quick",
                        estimator="prequential", seeds=1, status="succeeded", progress=1.0, attempts=1,
                        finished_at=utcnow(), epiplexity_bits_per_byte=epiplexity_bpb,
                        entropy_bits_per_byte=8 - epiplexity_bpb))
    session.flush()
    return dataset.id


def add_row(session, source: str, target: str, bits_per_byte: float) -> None:
    session.add(TransferRow(source_dataset_id=source, target_dataset_id=target, job_id=f"job_{source[3:]}",
                            score_key=KEY, preset="quick", seed=0, transfer_bits=bits_per_byte * 4096,
                            transfer_bits_per_byte=bits_per_byte, scratch_code_bits=20000.0,
                            transfer_code_bits=20000.0 - bits_per_byte * 4096, target_bytes_coded=4096,
                            target_tokens_coded=4096, budget_flops=1e9, model={"params": 10}, measured_at=utcnow()))


def law(source_s: float, target_s: float) -> float:
    """The relation the predictor has to find: richer sources transfer more."""
    return 0.5 * source_s - 0.1 * target_s - 0.05


def test_the_predictor_learns_from_measured_rows_and_reports_its_quality(sessions):
    rng = np.random.default_rng(0)
    with sessions() as session:
        sources = {add_dataset(session, f"source{i}", s): s for i, s in enumerate(rng.uniform(0, 1, 4))}
        targets = {add_dataset(session, f"target{i}", s, panel=True): s for i, s in enumerate(rng.uniform(0, 1, 3))}
        for source, s_source in sources.items():
            for target, s_target in targets.items():
                add_row(session, source, target, law(s_source, s_target) + rng.normal(0, 0.005))
        # A pair whose target was never scored cannot be learned from: it is left out, not guessed at.
        add_row(session, next(iter(sources)), add_dataset(session, "unscored", None), 0.9)
        new = add_dataset(session, "new-source", 0.8)
        session.commit()

        predictor = fit_predictor(session)
        assert predictor.ready and predictor.pairs == 12
        assert predictor.quality["loo_spearman"] > 0.9
        assert predictor.quality["loo_mae_bits_per_byte"] < predictor.quality["baseline_mae_bits_per_byte"] / 3
        assert fit_predictor(session) is predictor  # same rows, same fit: cached, not refitted

        report = dataset_transfer(session, session.get(Dataset, new))
        assert report.measured == [] and report.predictor.ready and report.predictor.pairs == 12
        assert report.predictor.quality.loo_spearman > 0.9
        predicted = {p.target_dataset_id: p.predicted_transfer_bits_per_byte for p in report.predicted}
        assert set(predicted) == set(targets)
        for target, s_target in targets.items():
            assert predicted[target] == pytest.approx(law(0.8, s_target), abs=0.05)

        add_row(session, new, next(iter(targets)), 0.3)  # a new measurement: refit on 13 pairs
        session.commit()
        assert fit_predictor(session).pairs == 13
        report = dataset_transfer(session, session.get(Dataset, new))
        assert [m.transfer_bits_per_byte for m in report.measured] == [0.3]
        assert next(iter(targets)) not in {p.target_dataset_id for p in report.predicted}


def test_with_too_few_pairs_nothing_is_predicted_and_the_reason_is_given(sessions):
    with sessions() as session:
        source = add_dataset(session, "source", 0.5)
        targets = [add_dataset(session, f"target{i}", 0.1 * i, panel=True) for i in range(5)]
        for target in targets[:3]:
            add_row(session, source, target, 0.2)
        session.commit()
        report = dataset_transfer(session, session.get(Dataset, add_dataset(session, "other", 0.3)))
        assert report.predictor.pairs == 3 and not report.predictor.ready and report.predictor.quality is None
        assert report.predictor.message == "too few measured pairs to predict (3 of 8 needed)"
        assert len(report.predicted) == 5
        assert all(p.predicted_transfer_bits_per_byte is None and p.note == report.predictor.message
                   for p in report.predicted)


def test_a_predictor_no_better_than_the_mean_predicts_with_a_warning(sessions):
    # Every dataset has the same figures but transfer differs: nothing in the features explains
    # it, so held-out predictions (the mean of the other pairs) miss by more than the mean does.
    with sessions() as session:
        sources = [add_dataset(session, f"source{i}", 0.5) for i in range(3)]
        targets = [add_dataset(session, f"target{i}", 0.5, panel=True) for i in range(3)]
        for i, (source, target) in enumerate((s, t) for s in sources for t in targets):
            add_row(session, source, target, 0.1 * i - 0.3)
        session.commit()
        report = dataset_transfer(session, session.get(Dataset, add_dataset(session, "new", 0.5)))
        quality = report.predictor.quality
        assert report.predictor.ready and report.predictor.pairs == 9
        assert quality.loo_mae_bits_per_byte >= quality.baseline_mae_bits_per_byte
        assert "no better than always guessing the mean" in report.predictor.message
        assert all(p.predicted_transfer_bits_per_byte is not None and p.note == report.predictor.message
                   for p in report.predicted)


def test_a_dataset_stands_for_its_newest_result_of_every_family_unless_settings_match(sessions):
    other = "c" * 64
    with sessions() as session:
        dataset_id = add_dataset(session, "of-fewer-families", 0.5)
        session.add(Job(id="job_of_fewer_families", dataset_id=dataset_id, config_key=other, score_key=other,
                        preset="quick", estimator="prequential", seeds=1, families=["context-mixing"],
                        status="succeeded", progress=1.0, attempts=1, finished_at=utcnow(),
                        epiplexity_bits_per_byte=0.1, entropy_bits_per_byte=7.0))
        session.flush()
        figures = _ScoredFigures(session)
        assert figures.get(dataset_id, "unknown settings")["epiplexity_bits_per_byte"] == 0.5
        assert figures.get(dataset_id, other)["epiplexity_bits_per_byte"] == 0.1


def _claimed_job(sessions, dataset_id: str) -> store.Claim:
    with sessions() as session:
        session.add(Job(id="job_run", dataset_id=dataset_id, config_key="c", score_key=KEY, estimator="prequential",
                        seeds=1, status="queued", progress=0.0, attempts=0, created_at=utcnow()))
        session.commit()
    return store.claim_next(sessions)


def test_a_measured_row_is_stored_only_by_the_attempt_that_owns_the_job_and_replaces_the_old_one(sessions):
    with sessions() as session:
        source, target = add_dataset(session, "s", 0.5), add_dataset(session, "t", 0.2)
        session.commit()
    claim = _claimed_job(sessions, source)
    row = {"source_dataset_id": source, "target_dataset_id": target, "preset": "quick", "seed": 0,
           "score_key": KEY, "transfer_bits": 100.0, "transfer_bits_per_byte": 0.1, "scratch_code_bits": 900.0,
           "transfer_code_bits": 800.0, "target_bytes_coded": 1000, "target_tokens_coded": 1000,
           "budget_flops": 1e9, "model": {"params": 10}}
    assert store.save_transfer(sessions, claim, row)
    assert store.save_transfer(sessions, claim, {**row, "transfer_bits": 200.0, "transfer_bits_per_byte": 0.2})
    stale = store.Claim(claim.job_id, claim.attempt - 1, claim.lease - 1)
    assert not store.save_transfer(sessions, stale, {**row, "transfer_bits_per_byte": 9.0})
    with sessions() as session:
        rows = session.scalars(select(TransferRow)).all()
        assert [(r.transfer_bits_per_byte, r.job_id) for r in rows] == [(0.2, "job_run")]
        session.delete(session.get(Dataset, target))  # deleting a target deletes what was measured to it
        session.commit()
        assert session.scalars(select(TransferRow)).all() == []


def test_the_transfer_migration_downgrades_and_upgrades_again(tmp_path):
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from app.core.db import MIGRATIONS_DIR

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    run_migrations(engine)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    before = ScriptDirectory.from_config(config).get_revision(TRANSFER_REVISION).down_revision
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, before)
    with engine.connect() as connection:
        assert "transfer_results" not in {r[0] for r in connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    run_migrations(engine)
    with engine.connect() as connection:
        columns = {r[1] for r in connection.exec_driver_sql("PRAGMA table_info(jobs)")}
    assert {"score_key", "transfer", "model_path"} <= columns
    engine.dispose()


def test_the_api_process_serves_transfer_and_the_panel_without_importing_torch(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from fastapi.testclient import TestClient
        from app.api.app import create_app
        from app.core.settings import Settings
        with TestClient(create_app(Settings(data_dir={str(tmp_path)!r}, workers=0, panel_bytes=1024)), base_url="http://127.0.0.1") as http:
            members = http.get("/v1/panel").json()["items"]
            assert len(members) == 8, members
            source = http.post("/v1/datasets", content=b"hello world" * 100,
                             headers={{"content-type": "application/octet-stream"}}).json()["id"]
            job = http.post("/v1/transfer", json={{"source": source, "targets": "panel"}})
            assert job.status_code == 202, job.text
            report = http.get(f"/v1/datasets/{{source}}/transfer")
            assert report.status_code == 200 and len(report.json()["predicted"]) == 8, report.text
            board = http.get("/v1/leaderboard", params={{"sort": "mean_transfer_bits_per_byte"}})
            assert board.status_code == 200, board.text
        assert "torch" not in sys.modules, "torch was imported by the API process"
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-3000:]
