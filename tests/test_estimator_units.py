"""Units and caches: per-byte figures divide by the bytes coded, `.npy` vocabularies are capped,
and saved runs are keyed by the estimators' code."""
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import estimators
from estimators import count_family, count_sweep, sweep, synthetic
from estimators.baselines import compressor_baselines
from estimators.data import MAX_VOCAB, DataFormatError, load, token_width, validate_file


def _npy(tmp_path, array, name="t.npy"):
    path = tmp_path / name
    np.save(path, array)
    return path


def test_the_same_tokens_saved_as_int64_or_uint16_code_the_same_bytes(tmp_path):
    ids = np.random.default_rng(0).integers(0, 1000, 20_000)
    wide = load(_npy(tmp_path, ids.astype(np.int64), "wide.npy"), "tokens")
    narrow = load(_npy(tmp_path, ids.astype(np.uint16), "narrow.npy"), "tokens")
    assert wide.bytes > 3.9 * narrow.bytes  # the uploads differ 4x...
    assert wide.bytes_coded == narrow.bytes_coded == 2 * 20_000  # ...what is coded does not
    assert wide.modelled_bytes() == narrow.modelled_bytes() == ids.astype("<u2").tobytes()
    assert compressor_baselines(wide) == compressor_baselines(narrow)


@pytest.mark.parametrize("vocab,width", [(2, 1), (256, 1), (257, 2), (50_257, 2), (MAX_VOCAB, 2)])
def test_token_width_is_the_smallest_unsigned_integer_holding_every_id(vocab, width):
    assert token_width(vocab) == width


def test_small_vocabularies_code_one_byte_per_token(tmp_path):
    data = load(_npy(tmp_path, np.arange(1000, dtype=np.int32) % 200), "tokens")
    assert data.vocab_size == 200 and data.bytes_coded == 1000
    assert data.modelled_bytes()[:3] == bytes([0, 1, 2])


def test_jsonl_codes_the_field_text_not_the_markup(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "id": i, "meta": "x" * 50})
                              for i, t in enumerate(["ab", "cd"])))
    data = load(path, "jsonl:text")
    assert data.bytes == path.stat().st_size > 100
    assert data.bytes_coded == len("ab\n\ncd") == 6


def test_per_byte_figures_and_baselines_divide_by_the_bytes_coded(tmp_path):
    path = tmp_path / "d.csv"
    rows = synthetic.periodic_bytes(8000, b"abcdefgh").decode()
    path.write_text("id,body,note\n" + "".join(f"{i},{rows[i * 80:(i + 1) * 80]},padding padding\n"
                                               for i in range(100)))
    # below the cheapest transformer run: the untrained uniform code, exactly 8 bits per token coded
    result = estimators.estimate(path, format="csv:body", budgets=[1e6], families=["transformer"]).to_dict()
    coded = result["dataset"]["bytes_coded"]
    assert coded == 100 * 80 + 99 * 2 == result["dataset"]["tokens"]
    assert result["dataset"]["bytes"] == path.stat().st_size > coded
    assert result["entropy_bits_per_byte"] == pytest.approx(8.0)
    assert result["entropy_bits"] == pytest.approx(8.0 * coded)
    assert result["baselines"]["zstd_bits_per_byte"] < 0.2  # periodic text, per byte coded


def test_token_figures_do_not_depend_on_the_storage_dtype(tmp_path):
    ids = np.random.default_rng(1).integers(0, 1000, 30_000)
    scores = [estimators.estimate(_npy(tmp_path, ids.astype(dtype), f"{dtype}.npy"),
                                  format="tokens", budgets=[1e6])
              for dtype in ("int64", "uint16")]
    assert scores[0].entropy_bits_per_byte == scores[1].entropy_bits_per_byte
    assert scores[0].entropy_bits_per_byte == pytest.approx(np.log2(1000) / 2)


@pytest.mark.parametrize("array,message", [
    (np.array([0, 1, MAX_VOCAB]), "token id 65,536 is above the largest allowed id, 65,535"),
    (np.array([3, 2 ** 40]), "token id 1,099,511,627,776 is above the largest allowed id"),
    (np.array([0, -1, 5]), "token ids must be non-negative, found -1"),
    (np.array([0.0, 1.0]), "tokens must be an integer array, got dtype float64"),
    (np.array([True, False]), "tokens must be an integer array, got dtype bool"),
    (np.zeros(0, dtype=np.int64), "the token array is empty"),
    (np.array(7), r"tokens must be a 1-D array \(or 2-D, rows read in order\), got shape \(\)"),
    (np.zeros((2, 2, 2), dtype=np.int64), r"got shape \(2, 2, 2\)"),
])
def test_token_arrays_outside_the_contract_are_refused_with_what_to_do(tmp_path, array, message):
    path = _npy(tmp_path, array)
    with pytest.raises(DataFormatError, match=message):
        validate_file(path, "tokens")
    with pytest.raises(DataFormatError, match=message):
        load(path, "tokens")


def test_the_cap_message_says_how_to_fix_it(tmp_path):
    with pytest.raises(DataFormatError) as caught:
        validate_file(_npy(tmp_path, np.array([5_000_000])), "tokens")
    assert "capped at 65,536 ids" in str(caught.value)
    assert "Remap the ids you use to 0..N-1" in str(caught.value)


def test_two_dimensional_token_arrays_are_read_row_by_row(tmp_path):
    data = load(_npy(tmp_path, np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint16)), "tokens")
    assert list(data.tokens) == [1, 2, 3, 4, 5, 6] and data.vocab_size == 7


@pytest.mark.parametrize("spec,content", [
    ("jsonl:text", b'{"text": ""}\n{"text": ""}\n'),
    ("csv:body", b"id,body\n1,\n2,\n"),
])
def test_records_whose_values_are_all_empty_are_refused(tmp_path, spec, content):
    path = tmp_path / "empty"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match="value is empty: there is nothing to code"):
        validate_file(path, spec)


def test_cli_exits_2_with_the_cap_message(tmp_path):
    path = _npy(tmp_path, np.array([0, 1, 70_000], dtype=np.int64))
    done = subprocess.run([sys.executable, "-m", "estimators", "score", str(path),
                           "--format", "tokens"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "token id 70,000 is above the largest allowed id, 65,535" in done.stderr
    assert "Traceback" not in done.stderr


def _hash_of_copy(package: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(package.parent)}
    return subprocess.run([sys.executable, "-c", "import estimators; print(estimators.code_hash())"],
                          capture_output=True, text=True, env=env, check=True,
                          cwd=package.parent).stdout.strip()


def test_the_code_hash_follows_the_source_not_the_version(tmp_path):
    copy = tmp_path / "estimators"
    shutil.copytree(Path(estimators.__file__).parent, copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    assert _hash_of_copy(copy) == estimators.code_hash()
    presets = copy / "presets.py"
    presets.write_text(presets.read_text().replace("learning_rate=3e-2", "learning_rate=2e-2", 1))
    assert _hash_of_copy(copy) != estimators.code_hash()



def _run_cached_kernel(package: Path) -> tuple[int, str]:
    """What `main.scaled(1)` returns in a fresh process, and whether it came from the cache."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package.parent),
                                                        str(Path(estimators.__file__).parents[1])])}
    done = subprocess.run([sys.executable, "-c", "from kernelpkg.main import scaled; "
                           "print(scaled(1), 'hit' if scaled.stats.cache_hits else 'compiled')"],
                          capture_output=True, text=True, env=env, check=True)
    value, how = done.stdout.split()
    return int(value), how


def test_a_cached_kernel_is_recompiled_when_a_module_it_inlines_changes(tmp_path):
    # numba alone checks only the file that defines a kernel: this read 20 three times
    package = tmp_path / "kernelpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "step.py").write_text(
        "from estimators.kernels import kernel\nSTEP = 1\n\n\n"
        "@kernel(inline='always')\ndef add_step(x):\n    return x + STEP\n")
    (package / "main.py").write_text(
        "from estimators.kernels import kernel\nfrom kernelpkg.step import add_step\n\n\n"
        "@kernel()\ndef scaled(x):\n    return 10 * add_step(x)\n")
    assert _run_cached_kernel(package) == (20, "compiled")
    assert _run_cached_kernel(package) == (20, "hit")
    step = package / "step.py"
    step.write_text(step.read_text().replace("STEP = 1", "STEP = 2"))
    assert _run_cached_kernel(package) == (30, "compiled")
    assert _run_cached_kernel(package) == (30, "hit")


def test_every_kernel_of_the_estimators_is_cached_under_the_code_hash():
    modules = [importlib.import_module(f"estimators.{path.stem}")
               for path in Path(estimators.__file__).parent.glob("*.py")
               if "@kernel" in path.read_text()]
    kernels = {f"{m.__name__}.{name}": f for m in modules for name, f in vars(m).items()
               if hasattr(f, "signatures") and f.__module__ == m.__name__}
    assert len(kernels) >= 40 and "estimators.context_mixing._code" in kernels
    stamps = {name: f._cache._impl.locator.get_source_stamp() for name, f in kernels.items()}
    assert {name for name, stamp in stamps.items() if stamp != estimators.code_hash()} == set()

def test_each_count_family_size_says_it_is_loading_its_kernels_before_it_codes():
    # the first run after installing compiles them for a minute: the bar must not sit unlabelled
    messages = []
    estimators.estimate(synthetic.MarkovSource(seed=5).sample(16 * 1024), budgets=[1e10],
                        families=[count_family.FAMILY], progress=lambda f, m: messages.append(m))
    for cfg in count_family.SIZES:
        name = f"{count_family.FAMILY} {cfg.name}"
        own = [m for m in messages if m in (name, f"{name} {count_sweep.STARTING}")]
        assert own[0] == f"{name} {count_sweep.STARTING}" and own[-1] == name, own


def test_saved_runs_are_not_reused_by_different_code(tmp_path, monkeypatch):
    data = synthetic.MarkovSource(seed=4).sample(24 * 1024)
    first = estimators.estimate(data, budgets=[1e10], state_dir=tmp_path)
    assert first.code_hash == estimators.code_hash() and len(first.code_hash) == 64
    for module in (sweep, count_sweep):  # where each family's saved runs are keyed
        monkeypatch.setattr(module, "code_hash", lambda: "f" * 64)
    messages = []
    estimators.estimate(data, budgets=[1e10], state_dir=tmp_path,
                        progress=lambda f, m: messages.append(m))
    assert messages and not any("(saved)" in m for m in messages)
    assert len(list(tmp_path.glob("run-*.json"))) == 2 * len(first.runs)
