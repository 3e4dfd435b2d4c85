"""Vetting without training: checks and their verdicts, baselines, config files, shards and reports."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from app.vet import reports
from app.vet.config import load_config
from app.vet.inputs import materialize, resolve
from app.vet.reports import VetSummary
from app.vet.vetting import Figures, Thresholds, Verdict, VetInputError, evaluate, exit_code, load_baseline

# Figures with the calibration truths: uniform random bytes (S ~ 0, H = 8 bits/byte, zstd a bit
# above 8) and an order-1 Markov source (S clearly above zero, H near its entropy rate).
NOISE = Figures(epiplexity_bits_per_byte=0.0, entropy_bits_per_byte=8.0, zstd_bits_per_byte=8.0024,
                epiplexity_bits=0.0, entropy_bits=262144.0, bytes=32768, budget_flops=1e10,
                preset=None, estimator="prequential")
MARKOV = Figures(epiplexity_bits_per_byte=0.2190, entropy_bits_per_byte=3.1155, zstd_bits_per_byte=3.5032,
                 epiplexity_bits=7175.0, entropy_bits=102088.0, bytes=32768, budget_flops=1e10,
                 preset=None, estimator="prequential")


def result_contract(figures: Figures) -> dict:
    """The estimator's JSON contract, as much of it as vetting reads."""
    return {"epiplexity_bits": figures.epiplexity_bits, "entropy_bits": figures.entropy_bits,
            "epiplexity_bits_per_byte": figures.epiplexity_bits_per_byte,
            "entropy_bits_per_byte": figures.entropy_bits_per_byte,
            "curve": [{"budget_flops": 1e9}, {"budget_flops": figures.budget_flops}],
            "baselines": {"zstd_bits_per_byte": figures.zstd_bits_per_byte, "lzma_bits_per_byte": 8.1},
            "dataset": {"bytes": figures.bytes}, "preset": figures.preset, "estimator": figures.estimator,
            "warnings": []}


def summary_of(*verdicts: Verdict, thresholds: Thresholds | None = None) -> VetSummary:
    return VetSummary(list(verdicts), thresholds or Thresholds(min_epiplexity_bits_per_byte=0.01),
                      {"where": "local", "format": "bytes", "preset": None, "budgets": [1e10],
                       "estimator": "prequential", "seeds": 1}, version="test", seconds=1.5)


# --- checks ---------------------------------------------------------------------------------

def test_random_bytes_fail_min_epiplexity_and_max_entropy_with_measured_values():
    checks = evaluate(NOISE, Thresholds(min_epiplexity_bits_per_byte=0.01, max_entropy_bits_per_byte=7.5))
    assert [(c.name, c.passed, c.measured, c.threshold) for c in checks] == [
        ("min-epiplexity", False, 0.0, 0.01), ("max-entropy", False, 8.0, 7.5)]
    assert "0.0000 bits/byte is below the minimum 0.0100 bits/byte" in checks[0].detail


def test_markov_data_passes_the_same_thresholds():
    checks = evaluate(MARKOV, Thresholds(min_epiplexity_bits_per_byte=0.01, max_entropy_bits_per_byte=7.5))
    assert all(c.passed for c in checks) and len(checks) == 2


def test_zstd_ratio_is_compressed_over_original_size():
    check, = evaluate(NOISE, Thresholds(max_zstd_ratio=0.95))
    assert check.measured == pytest.approx(8.0024 / 8) and not check.passed
    check, = evaluate(MARKOV, Thresholds(max_zstd_ratio=0.95))
    assert check.measured == pytest.approx(3.5032 / 8) and check.passed


def test_a_value_equal_to_its_threshold_passes():
    check, = evaluate(MARKOV, Thresholds(min_epiplexity_bits_per_byte=0.2190))
    assert check.passed


def test_regression_fails_when_epiplexity_drops_more_than_allowed_and_reports_both_values():
    halved = Figures(epiplexity_bits_per_byte=0.1095, entropy_bits_per_byte=3.4271)
    drop, rise = evaluate(halved, Thresholds(max_epiplexity_drop_percent=20, max_entropy_rise_percent=20),
                          baseline=MARKOV)
    assert drop.name == "max-drop" and not drop.passed and drop.measured == pytest.approx(50.0)
    assert (drop.baseline_value, drop.current_value) == (0.2190, 0.1095)
    assert "0.2190 -> 0.1095" in drop.detail and "more than the allowed 20.0%" in drop.detail
    assert rise.name == "max-entropy-rise" and rise.passed and rise.measured == pytest.approx(10.0, abs=0.01)
    allowed, = evaluate(halved, Thresholds(max_epiplexity_drop_percent=60), baseline=MARKOV)
    assert allowed.passed


def test_more_epiplexity_than_the_baseline_is_never_a_drop():
    check, = evaluate(MARKOV, Thresholds(max_epiplexity_drop_percent=0), baseline=NOISE)
    assert check.passed and check.measured < 0


def test_regression_without_a_baseline_is_an_input_error():
    with pytest.raises(VetInputError, match="--baseline"):
        evaluate(MARKOV, Thresholds(max_epiplexity_drop_percent=10))


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), True])
def test_thresholds_must_be_non_negative_finite_numbers(bad):
    with pytest.raises(VetInputError, match="non-negative"):
        Thresholds(max_entropy_bits_per_byte=bad)


def test_exit_code_is_2_on_any_error_else_1_on_any_failure_else_0():
    passed = Verdict.judge("a", MARKOV, Thresholds(min_epiplexity_bits_per_byte=0.01))
    failed = Verdict.judge("b", NOISE, Thresholds(min_epiplexity_bits_per_byte=0.01))
    broken = Verdict.failed_to_run("c", "not valid UTF-8 text")
    assert (passed.status, failed.status) == ("passed", "failed")
    assert [exit_code([passed]), exit_code([passed, failed]), exit_code([failed, broken])] == [0, 1, 2]


def test_a_baseline_under_other_settings_is_warned_about():
    other = Figures(epiplexity_bits_per_byte=0.3, entropy_bits_per_byte=3.0, budget_flops=1e12)
    verdict = Verdict.judge("a", MARKOV, Thresholds(max_epiplexity_drop_percent=90), baseline=other)
    assert any("budget_flops 1000000000000.0" in w for w in verdict.warnings)


# --- baselines ------------------------------------------------------------------------------

def test_baseline_is_read_from_every_json_epiplex_writes(tmp_path):
    contract = result_contract(MARKOV)
    shapes = {"score.json": contract, "job.json": {"id": "job_1", "result": contract},
              "vet.json": {"status": "passed", "figures": MARKOV.to_dict()},
              "report.json": summary_of(Verdict.judge("data/x", MARKOV, Thresholds(0.01))).to_dict()}
    for name, document in shapes.items():
        (tmp_path / name).write_text(json.dumps(document))
        figures = load_baseline(tmp_path / name)
        assert figures.epiplexity_bits_per_byte == 0.2190 and figures.zstd_bits_per_byte == 3.5032, name


def test_a_report_with_several_datasets_is_matched_by_name(tmp_path):
    report = summary_of(Verdict.judge("a.bin", MARKOV, Thresholds(0.01)),
                        Verdict.judge("b.bin", NOISE, Thresholds(0.01))).to_dict()
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert load_baseline(path, "b.bin").entropy_bits_per_byte == 8.0
    with pytest.raises(VetInputError, match="several datasets"):
        load_baseline(path, "c.bin")


@pytest.mark.parametrize("content, message", [("{not json", "not readable JSON"), ("[1]", "JSON object"),
                                              ('{"status": "passed"}', "not an Epiplex result")])
def test_a_bad_baseline_says_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "baseline.json"
    path.write_text(content)
    with pytest.raises(VetInputError, match=message):
        load_baseline(path)
    with pytest.raises(VetInputError, match="no such file"):
        load_baseline(tmp_path / "missing.json")


# --- config ---------------------------------------------------------------------------------

def test_thresholds_come_from_tool_epiplex_in_pyproject_with_paths_relative_to_it(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.epiplex]\npaths = ["data/"]\nmin-epiplexity = 0.05\n'
        'max_entropy = 7\nbudget = 1e10\nreport = "out/report.md"\n')
    sub = tmp_path / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    config = load_config()
    assert config.source == tmp_path / "pyproject.toml"
    assert config.values == {"paths": ["../data"], "min_epiplexity": 0.05, "max_entropy": 7.0,
                             "budget": [1e10], "report": ["../out/report.md"]}


def test_epiplex_toml_is_preferred_and_read_at_top_level(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.epiplex]\nmax-entropy = 1\n')
    (tmp_path / "epiplex.toml").write_text('max-entropy = 6.5\nserver = "http://127.0.0.1:8000"\n')
    config = load_config(start=tmp_path)
    assert config.values == {"max_entropy": 6.5, "server": "http://127.0.0.1:8000"}


def test_families_come_from_the_config_and_the_summary_names_them(tmp_path):
    (tmp_path / "epiplex.toml").write_text('families = "context-mixing"\n')
    assert load_config(start=tmp_path).values == {"families": ["context-mixing"]}
    summary = summary_of()
    summary.settings["families"] = ["context-mixing"]
    assert summary.describe_settings() == ("budgets 1e+10 FLOPs, prequential, seeds 1, families context-mixing, "
                                           "format bytes, local")


@pytest.mark.parametrize("text, message", [("min-epiplexty = 0.1", "unknown key 'min-epiplexty'"),
                                           ('max-entropy = "high"', "must be a number"),
                                           ("families = [1]", "must be a string or a list of strings"),
                                           ("max-entropy = ", "not valid TOML")])
def test_a_bad_config_names_the_key_and_the_file(tmp_path, text, message):
    (tmp_path / "epiplex.toml").write_text(text)
    with pytest.raises(VetInputError, match=message):
        load_config(start=tmp_path)


def test_the_search_for_a_config_stops_at_the_git_root(tmp_path):
    (tmp_path / "epiplex.toml").write_text("max-entropy = 6.5\n")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    assert load_config(start=repo).values == {}


# --- inputs ---------------------------------------------------------------------------------

def test_a_directory_is_one_dataset_of_its_shards_in_path_order(tmp_path):
    shards = tmp_path / "shards"
    (shards / "b").mkdir(parents=True)
    (shards / "a.txt").write_bytes(b"first ")
    (shards / "b" / "c.txt").write_bytes(b"second")
    (shards / ".hidden").write_bytes(b"skipped")
    source, = resolve([str(shards)])
    assert [f.name for f in source.files] == ["a.txt", "c.txt"]
    assert materialize(source, "text", tmp_path).read_bytes() == b"first second"


def test_jsonl_shards_are_joined_line_by_line_and_csv_shards_keep_one_header(tmp_path):
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "1.jsonl").write_text('{"t": "a"}')
    (tmp_path / "j" / "2.jsonl").write_text('{"t": "b"}\n')
    source, = resolve([str(tmp_path / "j")])
    assert materialize(source, "jsonl:t", tmp_path).read_text() == '{"t": "a"}\n{"t": "b"}\n'
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "1.csv").write_text("id,text\n1,hello\n")
    (tmp_path / "c" / "2.csv").write_text("id,text\n2,world")
    source, = resolve([str(tmp_path / "c")])
    assert materialize(source, "csv:text", tmp_path).read_text() == "id,text\n1,hello\n2,world\n"
    (tmp_path / "c" / "3.csv").write_text("id,body\n3,other\n")
    source, = resolve([str(tmp_path / "c")])
    with pytest.raises(VetInputError, match="must share one header"):
        materialize(source, "csv:text", tmp_path)


def test_token_shards_are_concatenated(tmp_path):
    (tmp_path / "t").mkdir()
    np.save(tmp_path / "t" / "1.npy", np.arange(5, dtype=np.uint16))
    np.save(tmp_path / "t" / "2.npy", np.arange(3, dtype=np.uint16))
    source, = resolve([str(tmp_path / "t")])
    assert np.load(materialize(source, "tokens", tmp_path)).tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    np.save(tmp_path / "t" / "3.npy", np.ones(2, dtype=np.float32))
    source, = resolve([str(tmp_path / "t")])
    with pytest.raises(VetInputError, match=r"shard .*3\.npy: tokens must be an integer array"):
        materialize(source, "tokens", tmp_path)


def test_a_glob_gives_one_dataset_per_match(tmp_path):
    for name in ("b.bin", "a.bin", "c.txt"):
        (tmp_path / name).write_bytes(b"x" * 10)
    assert [s.name for s in resolve([str(tmp_path / "*.bin")])] == [str(tmp_path / "a.bin"),
                                                                    str(tmp_path / "b.bin")]


@pytest.mark.parametrize("paths, message", [([], "no dataset given"), (["nope.bin"], "no such file"),
                                            (["*.nothing"], "no files match"),
                                            (["empty"], "holds no files")])
def test_paths_that_name_nothing_are_input_errors(tmp_path, monkeypatch, paths, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VetInputError, match=message):
        resolve(paths)


def test_the_same_data_named_twice_is_an_input_error(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x")
    with pytest.raises(VetInputError, match="name the same data"):
        resolve([str(tmp_path / "a.bin"), str(tmp_path / "*.bin")])


# --- reports --------------------------------------------------------------------------------

def mixed_summary() -> VetSummary:
    thresholds = Thresholds(min_epiplexity_bits_per_byte=0.01, max_entropy_bits_per_byte=7.5)
    return summary_of(Verdict.judge("noise <&> .bin", NOISE, thresholds, cached=True),
                      Verdict.judge("markov.bin", MARKOV, thresholds, cached=False),
                      Verdict.failed_to_run("bad.txt", "not valid UTF-8 text: bad byte at offset 3"),
                      thresholds=thresholds)


def test_junit_parses_and_names_each_failing_check():
    root = ET.fromstring(reports.junit(mixed_summary()))
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "2", "1")
    failing = {(case.get("classname"), case.get("name")): case.find("failure")
               for case in suite.iter("testcase") if case.find("failure") is not None}
    assert set(failing) == {("noise <&> .bin", "min-epiplexity"), ("noise <&> .bin", "max-entropy")}
    assert "8.0000 bits/byte" in failing["noise <&> .bin", "max-entropy"].get("message")
    error, = [case for case in suite.iter("testcase") if case.find("error") is not None]
    assert error.get("classname") == "bad.txt" and "offset 3" in error.find("error").get("message")


def test_reports_give_s_with_the_standard_error_its_result_carries():
    result = result_contract(MARKOV)
    result["curve"][-1]["epiplexity_stderr_bits_per_byte"] = 0.0125
    figures = Figures.from_result(result)
    assert figures.epiplexity_stderr_bits_per_byte == pytest.approx(0.0125)
    assert Figures.from_result(result_contract(MARKOV)).epiplexity_stderr_bits_per_byte is None
    thresholds = Thresholds(min_epiplexity_bits_per_byte=0.01)
    summary = summary_of(Verdict.judge("markov.txt", figures, thresholds), thresholds=thresholds)
    for text in (reports.markdown(summary), reports.html_report(summary)):
        assert "0.2190 ± 0.0125" in text


def test_markdown_and_html_hold_the_measured_values_and_thresholds():
    summary = mixed_summary()
    for text in (reports.markdown(summary), reports.html_report(summary)):
        for value in ("0.0000 bits/byte", "8.0000 bits/byte", "0.2190 bits/byte", "3.1155 bits/byte",
                      "0.0100 bits/byte", "7.5000 bits/byte", "offset 3"):
            assert value in text, value
    assert "1 of 3 datasets passed, 1 failed, 1 could not be vetted" in reports.markdown(summary)
    page = reports.html_report(summary)
    assert "noise &lt;&amp;&gt; .bin" in page and "noise <&>" not in page


def test_the_json_report_is_a_baseline_for_the_next_run(tmp_path):
    summary = mixed_summary()
    reports.write(summary, tmp_path / "out" / "report.json")
    document = json.loads((tmp_path / "out" / "report.json").read_text())
    assert document["status"] == "error" and document["exit_code"] == 2
    assert [d["status"] for d in document["datasets"]] == ["failed", "passed", "error"]
    assert load_baseline(tmp_path / "out" / "report.json", "markov.bin") == MARKOV


def test_the_table_prints_every_check_and_the_outcome():
    text = reports.table(mixed_summary())
    assert "min-epiplexity  0.0000 bits/byte  >= 0.0100 bits/byte  FAIL" in text
    assert text.splitlines()[-1].startswith("ERROR: 1 of 3 datasets passed")


def test_the_api_schema_and_the_vet_module_name_the_same_thresholds_and_figures():
    from dataclasses import fields

    from app.api.schemas import VetFigures, VetThresholds
    from app.vet.vetting import THRESHOLD_NAMES, Figures

    assert tuple(VetThresholds.model_fields) == THRESHOLD_NAMES
    assert tuple(VetFigures.model_fields) == tuple(item.name for item in fields(Figures))
