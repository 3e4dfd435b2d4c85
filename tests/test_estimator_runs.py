"""A sweep made run by run (as a cluster does) gives the result of a one-machine sweep."""
import estimators
from estimators import count_family, synthetic
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
    assert runs[kept_run(runs)]["family"] == "transformer"

    state = tmp_path / "state"
    made = [make_run(str(source), i, state_dir=state, device="cpu", **OPTIONS) for i in range(len(runs))]
    assert [run.get("family", "transformer") for run in made] == [r["family"] for r in runs]

    labels: list[str] = []
    assembled = estimators.estimate(str(source), state_dir=state, device="cpu",
                                    progress=lambda fraction, label="": labels.append(label), **OPTIONS)
    trained = {label for label in labels
               if "(saved)" not in label and ("seed" in label or count_family.FAMILY in label)}
    assert not trained  # nothing was made again: every run, count family included, was reloaded
    assert any(count_family.FAMILY in label and "(saved)" in label for label in labels)
    alone = estimators.estimate(DATA, device="cpu", **OPTIONS)
    assert assembled.epiplexity_bits == alone.epiplexity_bits
    assert assembled.entropy_bits == alone.entropy_bits
