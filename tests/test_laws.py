"""Laws any correct observer satisfies, on generated data with known answers (issue 11).

Every estimate here runs the quick preset with the default families (the headline is the
minimum over them). A cheap program that codes the data shorter than the headline S + H is a
bug, so the compressors (lzma, zstd, bzip2, brotli, PPMd) are bounds the headline must meet on
every structured source."""
import collections
import json
import math
import re
from functools import lru_cache
from pathlib import Path

import numpy
import pytest

import estimators
from estimators import panel, synthetic
from estimators.baselines import cheap_programs

SIZE = 256 * 1024
SMALL = 128 * 1024  # where a law names no size
SLACK = 0.01  # bits/byte the headline may sit above a compressor (issue 11)
MARKOV = {
    "order2-16": synthetic.MarkovSource(order=2, alphabet=16, concentration=1.0, seed=11),
    "order3-4": synthetic.MarkovSource(order=3, alphabet=4, concentration=0.5, seed=12),
    # every byte value: order-2 counters are too thin to help, and were 4.9% above the rate
    # until a size mixed order 1 and 0 alone (cm-order1)
    "order1-256": synthetic.MarkovSource(order=1, alphabet=256, concentration=0.3, seed=21),
    # two symbols, long memory: order 8 was 40% above the rate until a size had contexts of
    # order 8
    "order5-2": synthetic.MarkovSource(order=5, alphabet=2, concentration=0.5, seed=13),
    "order8-2": synthetic.MarkovSource(order=8, alphabet=2, concentration=0.5, seed=14),
    # 3,125 states: 8.5% above the rate until a size had contexts of order 5, not only 4 and 6
    "order5-5": synthetic.MarkovSource(order=5, alphabet=5, concentration=0.16, seed=0),
}
# orders beyond the contexts of most sizes: lzma won both, 0.62 and 0.63 against 0.81 and 0.82,
# until a size had contexts of order 12, 16 and 24
LONG_CHAINS = {
    "order12-2": synthetic.MarkovSource(order=12, alphabet=2, concentration=0.2, seed=2),
    "order16-2": synthetic.MarkovSource(order=16, alphabet=2, concentration=0.1, seed=3),
}
CA_RULES = (15, 30, 54, 90, 110, 150)  # 15: each row the shifted negation of the last
# 150 cells a row, each row the last shifted by a cell: the line above crosses more held-out
# block edges, where a pass that lost its lines and its repeat cost 0.017 bits/byte (lzma 0.013)
WIDE_CA_RULES = (2, 24)
# cells as 0/1 bytes, rows one after another with no newline (width: cells a row): the width is
# found from the data. Before, rule 30 cost 1.00 bits/byte (lzma 0.92) and rule 90 1.00.
BYTE_CA = {30: 64, 90: 77, 110: 100}


def _period(name: str) -> int:
    """Bytes in the pattern of a `repeat-KIB` source."""
    return int(name[len("repeat-"):]) * 1024


@lru_cache(maxsize=None)  # the compressor law codes each source again
def _source(name: str) -> bytes:
    if name == "random":
        return synthetic.random_bytes(SIZE, seed=5)
    if name == "constant":
        return synthetic.constant_bytes(SIZE)
    if name == "sentence":
        return synthetic.repeated_sentence(SMALL)
    if name == "half-random":  # random bytes, then as many constant ones: 4 bits/byte
        return synthetic.random_bytes(SIZE // 2, seed=9) + synthetic.constant_bytes(SIZE // 2)
    if name.startswith("markov-"):
        return MARKOV[name[len("markov-"):]].sample(SIZE, seed=3)
    if name.startswith("chain-"):
        return LONG_CHAINS[name[len("chain-"):]].sample(SIZE, seed=1)
    if name.startswith("ca-bytes-"):
        rule = int(name[len("ca-bytes-"):])
        return synthetic.ca_rows(SIZE, rule, BYTE_CA[rule], seed=4, glyphs=b"\x00\x01",
                                 newlines=False)
    if name == "ca-packed-106":  # 8 cells a byte, 16 bytes a row: 8 bits/byte until the byte
        return synthetic.cellular_automaton(SIZE, 106, 128, seed=1)  # above was a context
    if name.startswith("ca-wide-"):
        return synthetic.ca_rows(SIZE, rule=int(name[len("ca-wide-"):]), width=150, seed=4)
    if name.startswith("ca-"):
        return synthetic.ca_rows(SMALL, rule=int(name[3:]), seed=4)
    if name.startswith("repeat-"):  # a random pattern repeated at a power-of-two period
        return synthetic.random_bytes(_period(name), seed=7) * (SIZE // _period(name))
    if name == "binary-period":  # 5,000 random "0"s and "1"s, repeated: one bit a character
        pattern = synthetic.random_bytes(5000, seed=10, alphabet=b"01")
        return synthetic.periodic_bytes(SIZE, pattern)
    if name == "twice":  # 144 KiB of random bytes written twice: 144 blocks of 1 KiB apart
        return synthetic.random_bytes(144 * 1024, seed=8) * 2
    if name == "machine-code":
        return panel.machine_code(SIZE)
    if name == "records":  # 16-byte binary records, stray newline bytes among them: lzma won
        return synthetic.binary_records(SMALL, seed=2)
    if name == "c-headers":  # real C, from the headers numpy ships
        headers = sorted(Path(numpy.get_include()).rglob("*.h"))
        return b"".join(path.read_bytes() for path in headers)[:SIZE]
    source = panel.python_source(SIZE)
    if name == "python":
        return source
    if name == "python-lines":
        return synthetic.shuffled_lines(source, seed=6)
    if name == "python-bytes":
        return synthetic.shuffled_bytes(source, seed=6)
    if name == "python-words":
        return synthetic.shuffled_words(source, seed=6)
    raise KeyError(name)


@lru_cache(maxsize=None)
def result(name: str) -> estimators.EstimateResult:
    return estimators.estimate(_source(name), preset="quick")


def total(point) -> float:
    return point.epiplexity_bits_per_byte + point.entropy_bits_per_byte


# Periods in KiB. 16 blocks of 1 KiB was the stride of the count family's held-out blocks at
# this size before each stratum of 16 held out one picked by a hash.
REPEATS = ("repeat-16", "repeat-64")
# Text with its lines or words shuffled too: PPMd of order 16 coded the lines 1.2% shorter
# until the count family had a context of the line so far.
STRUCTURED = ["sentence", "python", "python-lines", "python-words", "c-headers", "machine-code",
              *REPEATS, "binary-period", "records", "ca-packed-106",
              *(f"markov-{k}" for k in MARKOV), *(f"chain-{k}" for k in LONG_CHAINS),
              *(f"ca-{r}" for r in CA_RULES), *(f"ca-bytes-{r}" for r in BYTE_CA)]


def test_random_bytes_have_no_structure_and_eight_bits_per_byte():
    for point in result("random").curve:
        assert point.epiplexity_bits_per_byte < 0.01
        assert abs(point.entropy_bits_per_byte - 8.0) < 0.08


def test_a_constant_file_costs_almost_nothing():
    assert total(result("constant").curve[-1]) < 0.05


@pytest.mark.parametrize("size", [1024, 4096])
def test_a_small_constant_file_costs_almost_nothing_too(size):
    # 0.0087 and 0.0024 bits/byte (cm-order24); zstd -19 pays 0.14 and 0.035
    top = estimators.estimate(synthetic.constant_bytes(size, 0), preset="quick").curve[-1]
    assert total(top) < 0.05 and top.family == "context-mixing"


@pytest.mark.parametrize("seed", [1, 2])
def test_a_kibibyte_of_random_bytes_is_no_shorter_than_eight_bits_a_byte(seed):
    # The transformer holds out one sequence of 1 KiB: its loss's error, left unknown (NaN),
    # counted as none, so 7.99 bits/byte on its sample won the frontier, and the result held a
    # NaN that strict JSON (and PostgreSQL's) refuses.
    outcome = estimators.estimate(synthetic.random_bytes(1024, seed=seed), preset="quick")
    assert total(outcome.curve[-1]) == 8.0
    json.dumps(outcome.to_dict(), allow_nan=False)


@pytest.mark.slow
def test_no_budget_codes_half_random_data_below_its_random_half():
    """The random half alone costs 8 bits a byte (4 over the file) whatever codes it. A
    transformer checkpoint's held-out sample once drew few sequences from that half and
    scored 1.85, and the frontier chose it."""
    r = result("half-random")
    for point in r.curve:
        assert total(point) > 3.95
    for points in r.families.values():
        assert all(total(p) > 3.95 for p in points)


def test_random_bytes_then_text_meeting_mid_stratum_split_into_no_structure():
    """20,000 random bytes, then a 12-byte phrase repeated: the random bytes cost 8 bits each
    whatever codes them, and there is almost nothing else. Their edge falls inside a stratum of
    held-out blocks and the last stratum is short, with no block of its own. The boundary's
    block (random) stood for its whole stratum and the short stratum's text was priced at the
    mean: H 3.81 bits/byte and S -0.17, a split with no meaning."""
    data = synthetic.random_bytes(20000, seed=7) + b"hello world " * 2000
    truth = 8 * 20000 / len(data)  # 3.636
    outcome = estimators.estimate(data, preset="quick")
    top = outcome.curve[-1]
    assert abs(top.epiplexity_bits_per_byte) < 0.02
    assert truth <= top.entropy_bits_per_byte < truth * 1.01
    assert total(top) < truth * 1.005
    # Its noise is not the gulf between the random strata and the text ones: taken as the
    # spread of the blocks, it read 0.82 bits/byte where the estimate is right to 0.01.
    chosen, = [c for run in outcome.runs for c in run["checkpoints"]
               if c["entropy_bits"] == top.entropy_bits]
    assert chosen["heldout_stderr"] < 0.3
    # nor is there more to learn: the first checkpoint had priced the text ahead as random
    assert not any("not flattened" in w for w in outcome.warnings)


@pytest.mark.slow
@pytest.mark.parametrize("name", REPEATS)
def test_a_repeated_random_pattern_is_all_structure(name):
    # The pattern's random bytes are the structure (8 bits each, once); every repeat is free.
    # Held-out blocks taken at a fixed stride once fell on the same bytes of every period:
    # S came out at -7.1 and H at 8.0 bits/byte.
    top = result(name).curve[-1]
    pattern = _period(name) * 8 / SIZE
    assert top.epiplexity_bits_per_byte == pytest.approx(pattern, rel=0.02)
    assert top.entropy_bits_per_byte < 0.01


@pytest.mark.slow
def test_random_bytes_written_twice_are_paid_once_and_are_structure():
    # The copy costs nothing, so S + H is 4 bits/byte, and the pattern is what a model learns.
    # Held out by a golden-ratio rule, the blocks of the first copy were the very blocks of
    # the second that were held out, each coded alone: S + H = 4.26 bits/byte (zstd 4.00)
    # split as S = -3.75, H = 8.0.
    outcome = result("twice")
    top = outcome.curve[-1]
    assert total(top) <= min(outcome.baselines["zstd_bits_per_byte"],
                             outcome.baselines["lzma_bits_per_byte"]) + 0.01
    assert top.epiplexity_bits_per_byte > 3.5
    assert top.entropy_bits_per_byte < 0.5


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MARKOV))
def test_markov_entropy_never_falls_below_the_rate_and_ends_within_five_percent(name):
    # Beyond noise: two standard errors of the held-out estimate of the checkpoint chosen
    # (16 KiB of the 256 held out; over eight samples of order 3 over 4 symbols, the final
    # H of cm-order4 came out 1.4% under the rate to 1.4% over it, 0.5% over on average).
    rate = MARKOV[name].entropy_rate_bits
    outcome = result(f"markov-{name}")
    for point in outcome.curve:  # the uniform code's error is 0: its length is exact
        assert point.entropy_bits_per_byte > rate - 2 * point.entropy_stderr_bits_per_byte
    assert outcome.curve[-1].entropy_bits_per_byte < rate * 1.05


@pytest.mark.slow
def test_markov_entropy_at_standard_ends_within_three_percent_of_the_rate():
    # The count family alone: with every family the headline is its point too (H 2.6673 against
    # a rate of 2.6477, from cm-order2; the transformer's best S+H 3.82 against 2.70), but
    # standard's transformer runs replay to 1e13 FLOPs, 128 s on an idle 2-core AVX2 machine.
    # Standard with the transformer: tests/test_estimator_budgets.py and
    # test_estimator_calibration.py.
    source = synthetic.MarkovSource(order=2, alphabet=16, concentration=0.3, seed=30)
    top = estimators.estimate(source.sample(SIZE, seed=3), preset="standard",
                              families=["context-mixing"]).curve[-1]
    assert source.entropy_rate_bits * 0.995 < top.entropy_bits_per_byte < source.entropy_rate_bits * 1.03


def test_a_word_shuffle_keeps_every_word_and_the_whitespace_between():
    text = b"def f(x):\n    return x + 1\n\n# done  here\n"
    shuffled = synthetic.shuffled_words(text, seed=1)
    assert shuffled != text and sorted(shuffled.split()) == sorted(text.split())
    assert re.findall(rb"\s+", shuffled) == re.findall(rb"\s+", text)
    assert synthetic.shuffled_words(b"  one  ", seed=1) == b"  one  "


@pytest.mark.parametrize("name", [*MARKOV, "order12-2"])
def test_the_true_probabilities_code_a_long_sample_at_the_rate(name):
    source = MARKOV.get(name) or LONG_CHAINS[name]  # 4,096 states for order12-2
    bits = source.bits(source.sample(1 << 18, seed=1))
    assert bits.mean() == pytest.approx(source.entropy_rate_bits, rel=0.02)
    assert bits.min() >= 0


def test_the_stationary_distribution_is_the_eigenvector_of_the_dense_chain(monkeypatch):
    source = MARKOV["order2-16"]
    move = numpy.zeros((source.states, source.states))
    for state in range(source.states):
        for symbol in range(source.alphabet):
            move[state, (state * source.alphabet + symbol) % source.states] += \
                source.transitions[state, symbol]
    values, vectors = numpy.linalg.eig(move.T)
    exact = numpy.real(vectors[:, numpy.argmin(numpy.abs(values - 1))])
    numpy.testing.assert_allclose(source.stationary(), exact / exact.sum(), rtol=1e-9)
    monkeypatch.setattr(synthetic, "DENSE_STATES", 0)  # by stepping the chain, as above 4,096
    numpy.testing.assert_allclose(source.stationary(), exact / exact.sum(), rtol=1e-9)


def test_the_posterior_bound_codes_each_byte_from_the_counts_of_all_the_others():
    source = synthetic.MarkovSource(2, 3, 0.5, seed=4)
    sample = source.sample(3000, seed=1)
    symbols = [b - source.first_symbol for b in sample]
    states = [0, 0, *symbols]  # the chain starts in state 0
    contexts = [(states[i], states[i + 1]) for i in range(len(symbols))]
    counted = collections.Counter(zip(contexts, symbols))
    seen = collections.Counter(contexts)
    leave_one_out = [-math.log2((counted[c, x] - 1 + 0.5) / (seen[c] - 1 + 3 * 0.5))
                     for c, x in zip(contexts, symbols)]
    numpy.testing.assert_allclose(source.posterior_bits(sample), leave_one_out, rtol=1e-12)
    # A chain with few states is learned to its oracle; thin counts stay far above it: order 2
    # over 64 symbols, 4,096 states of about 64 bytes each at 256 KiB
    few, many = synthetic.MarkovSource(1, 4, 0.3, seed=2), synthetic.MarkovSource(2, 64, 1.0)
    for source, low, high in ((few, 1.0, 1.002), (many, 1.03, 1.08)):
        sample = source.sample(256 << 10, seed=1)
        ratio = source.posterior_bits(sample).mean() / source.bits(sample).mean()
        assert low < ratio < high


@pytest.mark.slow
@pytest.mark.parametrize("order,alphabet,concentration",
                         [(1, 4, 0.3), (2, 8, 0.5), (3, 8, 0.3), (3, 2, 0.5)])
def test_markov_entropy_is_what_the_true_probabilities_code_the_sample_in(
        order, alphabet, concentration):
    # The rate is an average; a sample of the chain is easier or harder than it, and its 16 KiB
    # held out more so (0.5556 bits/byte against 0.5438 for the whole first sample, rate
    # 0.5435). H is the final model's loss over the whole sample, the held-out blocks corrected
    # by the online code (`estimators/pairing.py`), which takes out much of that draw but not
    # all: its error's spread is 0.005 bits/byte on such a chain (`bench/bench_pairing.py`),
    # and H comes out 0.988-1.011 times what the true probabilities code the sample in
    # (uncorrected, 1.024 for the first). The last is nearly deterministic (0.019 bits/byte, in
    # bursts of rare symbols): 1.071 while the correction clipped a block that fell on a burst.
    source = synthetic.MarkovSource(order, alphabet, concentration, seed=100 * order + alphabet)
    data = source.sample(SIZE, seed=5)
    oracle = source.bits(data).mean()
    top = estimators.estimate(data, preset="quick", families=["context-mixing"]).curve[-1]
    assert oracle * 0.98 < top.entropy_bits_per_byte < oracle * 1.025


@pytest.mark.slow
@pytest.mark.parametrize("name", STRUCTURED)
def test_no_compressor_codes_structured_data_shorter_than_the_top_budget(name):
    r = result(name)
    coded = {"lzma": r.baselines["lzma_bits_per_byte"],
             "zstd-19": r.baselines["zstd_bits_per_byte"], **cheap_programs(_source(name))}
    assert total(r.curve[-1]) <= min(coded.values()) + SLACK, coded


@pytest.mark.slow
@pytest.mark.parametrize("name", [*(f"ca-{r}" for r in CA_RULES),
                                  *(f"ca-wide-{r}" for r in WIDE_CA_RULES),
                                  *(f"ca-bytes-{r}" for r in BYTE_CA)])
def test_cellular_automaton_rows_are_structure_for_every_rule(name):
    r = result(name)
    assert total(r.curve[-1]) <= r.baselines["lzma_bits_per_byte"]
    assert r.curve[-1].entropy_bits_per_byte < 0.1  # the row above determines each cell


@pytest.mark.slow
@pytest.mark.parametrize("name", ["random", "constant", "sentence", "python", "markov-order2-16"])
def test_total_code_never_rises_with_budget(name):
    totals = [p.epiplexity_bits + p.entropy_bits for p in result(name).curve]
    assert all(later <= earlier + 1e-6 for earlier, later in zip(totals, totals[1:]))


# Shuffled bytes keep only the byte frequencies: the headline loses its structure. Shuffled
# lines keep each line and lose the order between them: H rises for every observer, and S
# falls for the transformer, which must learn to use the context it reads. The count family
# has its use of context built in (a match model, counters that adapt) and remembers the whole
# file, so what it learns of each line's relatives counts as structure: measured against every
# rotation of its held-out slice, its S rises under a line shuffle (docs/count-family.md,
# "Against a truth").
@pytest.mark.slow
def test_shuffling_real_text_lowers_structure_and_raises_entropy():
    real, lines = result("python"), result("python-lines")
    for scrambled in (result("python-words"), result("python-bytes")):
        assert scrambled.curve[-1].epiplexity_bits_per_byte < real.curve[-1].epiplexity_bits_per_byte
        assert scrambled.curve[-1].entropy_bits_per_byte > real.curve[-1].entropy_bits_per_byte
    assert lines.curve[-1].entropy_bits_per_byte > real.curve[-1].entropy_bits_per_byte
    before, after = real.families["transformer"][-1], lines.families["transformer"][-1]
    assert after.epiplexity_bits_per_byte < before.epiplexity_bits_per_byte
    assert after.entropy_bits_per_byte > before.entropy_bits_per_byte


@pytest.mark.slow
def test_headline_is_the_minimum_over_families_and_names_the_winner():
    r = result("python")
    assert set(r.families) == {"transformer", "context-mixing"}
    for i, point in enumerate(r.curve):
        per_family = [curve[i] for curve in r.families.values()]
        assert total(point) == pytest.approx(min(total(p) for p in per_family))
        winner = r.families[point.family][i] if point.family != "uniform" else None
        assert winner is None or winner.model == point.model
    for name, curve in r.families.items():
        assert all(p.family in (name, "uniform") for p in curve)
    d = r.to_dict()
    assert d["curve"][-1]["family"] == "context-mixing"  # source code: counts beat 48x2 at quick's top
    own = d["families"]["transformer"][-1]["model"]
    assert (own["width"], own["depth"]) == (48, 2)


def test_families_can_be_chosen_and_unknown_ones_are_refused():
    only = estimators.estimate(synthetic.repeated_sentence(32768), preset="quick",
                               families=["context-mixing"])
    assert set(only.families) == {"context-mixing"}
    assert only.runs and all(run["family"] == "context-mixing" for run in only.runs)
    assert total(only.curve[-1]) < 0.02
    with pytest.raises(ValueError, match="unknown observer family 'ppm'"):
        estimators.estimate(b"abc" * 1000, families=["ppm"])
