"""A sweep made run by run (as a cluster does) gives the result of a one-machine sweep."""
import threading
import time

import pytest

import estimators
from estimators import count_family, count_sweep, synthetic
from app.jobs.executors.ray import run_resources
from estimators.lanes import run_in_lanes
from estimators.runs import kept_run, make_run, sweep_runs

DATA = synthetic.MarkovSource(order=1, alphabet=8, seed=3).sample(16 * 1024, seed=4)
OPTIONS = {"budgets": [1e9, 1e10], "seeds": 2}


def test_every_run_of_every_family_is_listed_and_made_apart(tmp_path):
    source = tmp_path / "data.bin"
    source.write_bytes(DATA)
    runs = sweep_runs(str(source), **OPTIONS)
    transformer = [r for r in runs if r["family"] == "transformer"]
    counting = [r for r in runs if r["family"] == count_family.FAMILY]
    assert {r["seed"] for r in transformer} == {0, 1} and len(transformer) % 2 == 0
    assert [r["size"] for r in counting] == [cfg.name for cfg in count_family.SIZES]
    assert all(r["seed"] is None and not r["keeps_model"] for r in counting)
    # A scheduler learns what each count-family run's process holds (transformer runs are small).
    assert [r["memory"] for r in counting] == [count_family.run_memory_bytes(cfg, len(DATA))
                                               for cfg in count_family.SIZES]
    assert all(r["memory"] is None for r in transformer)
    assert [run_resources(r) for r in runs] == [{"memory": r["memory"]} if r["memory"] else {} for r in runs]
    assert runs[kept_run(runs)]["family"] == "transformer"

    state = tmp_path / "state"
    made = [make_run(str(source), i, state_dir=state, device="cpu", threads=1, **OPTIONS)
            for i in range(len(runs))]
    assert [run.get("family", "transformer") for run in made] == [r["family"] for r in runs]

    labels: list[str] = []
    assembled = estimators.estimate(str(source), state_dir=state, device="cpu", threads=1,
                                    progress=lambda fraction, label="": labels.append(label), **OPTIONS)
    trained = {label for label in labels
               if "(saved)" not in label and ("seed" in label or count_family.FAMILY in label)}
    assert not trained  # nothing was made again: every run, count family included, was reloaded
    assert any(count_family.FAMILY in label and "(saved)" in label for label in labels)
    alone = estimators.estimate(DATA, device="cpu", threads=2, **OPTIONS)  # on two lanes
    assert assembled.epiplexity_bits == alone.epiplexity_bits
    assert assembled.entropy_bits == alone.entropy_bits


@pytest.mark.parametrize("family", ["transformer", count_family.FAMILY])
def test_a_sweep_of_one_family_lists_and_makes_its_runs_alone(tmp_path, family):
    runs = sweep_runs(DATA, families=[family], **OPTIONS)
    assert runs and {r["family"] for r in runs} == {family}
    if family == count_family.FAMILY:
        assert [r["size"] for r in runs] == [cfg.name for cfg in count_family.SIZES]
        for i in range(len(runs)):
            make_run(DATA, i, state_dir=tmp_path, families=[family], **OPTIONS)
        assembled = estimators.estimate(DATA, state_dir=tmp_path, families=[family], **OPTIONS)
        alone = estimators.estimate(DATA, families=[family], **OPTIONS)
        assert (assembled.epiplexity_bits, assembled.entropy_bits) == (alone.epiplexity_bits, alone.entropy_bits)
        assert list(assembled.families) == [family]


def test_runs_on_lanes_give_the_result_of_one_lane_and_stop_with_the_sweep():
    reported: list[float] = []
    lanes = estimators.estimate(DATA, device="cpu", threads=2, progress=lambda f, m="": reported.append(f),
                                **OPTIONS)
    one = estimators.estimate(DATA, device="cpu", threads=1, **OPTIONS)
    assert lanes.to_dict()["curve"] == one.to_dict()["curve"]
    assert [r["checkpoints"] for r in lanes.runs] == [r["checkpoints"] for r in one.runs]
    assert reported == sorted(reported) and reported[-1] == 1.0

    class Canceled(Exception):
        pass

    def cancel(fraction, label=""):
        raise Canceled(fraction)

    before = threading.active_count()
    with pytest.raises(Canceled) as canceled:
        estimators.estimate(DATA, device="cpu", threads=2, progress=cancel, **OPTIONS)
    assert canceled.value.args[0] < 1.0  # raised by a report while the lanes were working
    deadline = time.monotonic() + 30
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert threading.active_count() == before  # every lane ended at its next tick


def test_each_count_family_size_takes_a_lane_of_its_own(monkeypatch):
    """The sizes are tasks apart, so a large file's largest size does not hold one lane while
    the other sits idle (16 MiB at quick: 372 s as one task, 196 s as three)."""
    lanes_used: dict[str, str] = {}
    made = count_sweep.count_family_run

    def recorded(sweep, cfg, tick=None):
        lanes_used[cfg.name] = threading.current_thread().name
        return made(sweep, cfg, tick)

    monkeypatch.setattr(count_sweep, "count_family_run", recorded)
    two = estimators.estimate(DATA, device="cpu", threads=2, families=["context-mixing"], **OPTIONS)
    assert set(lanes_used) == {cfg.name for cfg in count_family.SIZES}
    assert len(set(lanes_used.values())) == 2  # the two largest sizes started on both lanes
    one = estimators.estimate(DATA, device="cpu", threads=1, families=["context-mixing"], **OPTIONS)
    assert [r["model"]["name"] for r in two.runs] == [cfg.name for cfg in count_family.SIZES]
    assert [r["checkpoints"] for r in two.runs] == [r["checkpoints"] for r in one.runs]


def test_lanes_never_run_tasks_at_once_beyond_their_memory_cap():
    """On 100 MiB quick's two largest count-family sizes ran at once and peaked near 2 GiB."""
    running: set[int] = set()
    at_once: list[set[int]] = []  # the tasks running as each one started
    lock = threading.Lock()

    def task(index: int):
        def run() -> int:
            with lock:
                running.add(index)
                at_once.append(set(running))
            time.sleep(0.05)
            with lock:
                running.discard(index)
            return index
        return run

    needs = [6, 6, 3, 1, 12, 2]  # bytes; the fifth is over the cap alone, and runs alone
    done = run_in_lanes([task(i) for i in range(len(needs))], 2, lambda: None, threading.Event(),
                        needs, 10)
    assert done == list(range(len(needs)))
    assert all(sum(needs[i] for i in tasks) <= 10 or tasks == {4} for tasks in at_once)
    assert {0, 2} in at_once  # a lane that frees takes the first task that fits, not the next

    def fails() -> None:
        raise ValueError("a run failed")

    with pytest.raises(ValueError, match="a run failed"):
        run_in_lanes([task(10), fails, task(11)], 2, lambda: None, threading.Event(), [1, 1, 1], 10)
