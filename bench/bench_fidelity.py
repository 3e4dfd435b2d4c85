"""Fidelity: Epiplex against known truths and against compressors, on generated data.

    bench/fidelity [--preset quick|standard] [--size-kib 256] [--families ...] [--more-sources]
    bench/fidelity --shuffle-law [--sizes-kib 256 512 1024]
    bench/fidelity --every-rule WIDTH [--cell-bytes | --packed] [--size-kib 256] [--families ...]
    bench/fidelity --markov-oracle [--size-kib 256] [--families ...]
    bench/fidelity --drawn-chains K [--orders 1 5] [--preset ...] [--size-kib 256] [--families ...]
    bench/fidelity --drawn SEED [--preset ...] [--size-kib 256] [--families ...]
    bench/fidelity --kinds-of-text [--size-kib 256] [--families ...]

Generates the sources of tests/test_laws.py (Markov chains with exact entropy rates, periodic
text, cellular-automaton rows, Python source and its shuffles, Python's compiled extension
modules, binary records, random and constant bytes, and files half random, half constant),
scores each with every family, and prints S, H and S+H at the top budget beside the truth,
lzma and zstd -19, and the shortest of bzip2, brotli and PPMd of orders 4, 8 and 16 ("best
other"), all in bits per byte. A compressor below S+H would mean the observer is loose by
that much. `--more-sources` does the same for more structured data (counters, hex
dumps, JSON and CSV lines, int16 audio, UTF-8 words, drifting statistics, Markov chains of
order 12-20, rows of fields whose random choices are known); `--drawn SEED` for sources whose
settings are drawn from SEED (Markov chains, repeat periods, cellular-automaton rules and
widths), data no test has seen;
`--kinds-of-text` for twelve kinds of real text found on this machine (C headers, JSON, YAML,
HTML, ...), in file order and with their lines shuffled. `--shuffle-law`
instead checks, at several sizes, that shuffling the lines of real text (Python source,
docstring prose) lowers S and raises H. `--every-rule` codes cellular-automaton rows of one
width for one rule of each of the 88 classes and checks each against lzma, which the law for
those rows allows no slack (`--cell-bytes`: cells as 0/1 bytes, the rows with no newline
between them; `--packed`: 8 cells to a byte, no newlines).
`--markov-oracle` sets H of Markov chains of many orders and alphabets beside their rate and
beside the oracle: what the true probabilities code the sample in, since a sample can be
easier or harder than the rate, and beside the Bayes bound (`MarkovSource.posterior_bits`):
how near the oracle the sample lets any learner that does not know the rows come. `--drawn-chains K` checks the Markov laws (H within 5% of the
rate at quick, never under it by more than two standard errors) on the K chains that
`bench/bench_pairing.py --drawn-chains` draws, many of them nearly deterministic
(`--orders 5 8`: orders 5-8 instead, over 2-4 symbols, each lowered while the chain has
over 4,096 states).
"""
from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import random
import sys
import sysconfig
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

import estimators  # noqa: E402
from machine import machine  # noqa: E402
from estimators import panel, synthetic  # noqa: E402
from estimators.baselines import cheap_programs  # noqa: E402


CELL_BYTES = b"\x00\x01"  # dead and live cells as bytes


def sources(size: int) -> list[tuple[str, bytes, str]]:
    """(name, data, truth of S+H in bits/byte as text) for each law-checking source."""
    rows = [("random bytes", synthetic.random_bytes(size, seed=5), "8 (S 0)"),
            ("constant", synthetic.constant_bytes(size), "0")]
    for label, source in [
            ("Markov order 2, 16 symbols", synthetic.MarkovSource(2, 16, 1.0, seed=11)),
            ("Markov order 3, 4 symbols", synthetic.MarkovSource(3, 4, 0.5, seed=12)),
            ("Markov order 1, 16 symbols", synthetic.MarkovSource(1, 16, 0.3, seed=1)),
            ("Markov order 5, 2 symbols", synthetic.MarkovSource(5, 2, 0.5, seed=13)),
            ("Markov order 8, 2 symbols", synthetic.MarkovSource(8, 2, 0.5, seed=14))]:
        rows.append((label, source.sample(size, seed=3), f"H >= {source.entropy_rate_bits:.3f}"))
    rows.append(("five words at random", synthetic.random_words(size, seed=3),
                 f"H >= {synthetic.words_rate_bits():.3f}"))
    rows.append(("24-byte sentence repeated", synthetic.repeated_sentence(size), "~0"))
    binary = synthetic.random_bytes(5000, seed=10, alphabet=b"01")
    rows.append(('5,000 of "0"/"1" repeated', synthetic.periodic_bytes(size, binary),
                 f"~{5000 / size:.4f}"))  # one bit a character, once
    half = synthetic.random_bytes(size // 2, seed=9)  # whatever codes it, 4 bits/byte in all
    rows += [("random half, constant half", half + synthetic.constant_bytes(size - len(half)),
              "4 (S 0)"),
             ("constant half, random half", synthetic.constant_bytes(size - len(half)) + half,
              "4 (S 0)"),
             ("random half written twice", half + half, "4 (S 4)"),
             # the copy costs H(0.01) + 0.08 bits a byte: where the changes are, and what
             ("  copy with 1% changed", half + synthetic.edited(half, 0.01, seed=2)[0], "~4.080")]
    for rule in (15, 30, 54, 90, 110, 150):
        rows.append((f"CA rows, rule {rule}", synthetic.ca_rows(size, rule, seed=4),
                     f"~{64 / size:.5f}"))  # only the random first row is entropy
    for rule in (2, 24):  # 150 cells a row, each row the last shifted by a cell
        rows.append((f"CA rows, rule {rule}, 150 wide", synthetic.ca_rows(size, rule, 150, seed=4),
                     f"~{150 / size:.5f}"))
    for rule, width in ((30, 64), (90, 77)):  # cells as 0/1 bytes, no newlines: width found
        rows.append((f"CA cells as bytes, rule {rule}",
                     synthetic.ca_rows(size, rule, width, seed=4, glyphs=CELL_BYTES,
                                       newlines=False), f"~{width / size:.5f}"))
    rows.append(("binary records, 16 bytes", synthetic.binary_records(size, seed=2),
                 f"~{synthetic.RECORDS_RATE_BITS:.3f}"))
    python = panel.python_source(size)
    rows += [("Python stdlib source", python, "?"),
             ("  same, lines shuffled", synthetic.shuffled_lines(python, seed=6), "?"),
             ("  same, words shuffled", synthetic.shuffled_words(python, seed=6), "?"),
             ("  same, bytes shuffled", synthetic.shuffled_bytes(python, seed=6), "?"),
             ("Python's compiled modules", panel.machine_code(size), "?")]
    return rows


def drawn_sources(size: int, seed: int) -> list[tuple[str, bytes, str]]:
    """Sources whose settings are drawn from `seed`: Markov chains (order, symbols and how
    peaked the rows are), random text repeated at a drawn period, and cellular-automaton rows
    of any rule at a drawn width. A new seed is data no test has seen."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(6):
        order = int(rng.integers(1, 7))
        alphabet = int(rng.integers(2, min(64, int(4096 ** (1 / order))) + 1))
        concentration = float(np.exp(rng.uniform(np.log(0.05), np.log(2.0))))
        source = synthetic.MarkovSource(order, alphabet, concentration, seed=int(rng.integers(1000)))
        data = source.sample(size, seed=int(rng.integers(1000)))
        # what the true probabilities code this sample in: a chain of rows nearly all one
        # symbol can stay in a corner of its states, far from its rate, for a whole sample
        rows.append((f"Markov {order}, {alphabet}, {concentration:.2f}", data,
                     f"oracle {source.bits(data).mean():.3f}"))
    letters = b"abcdefghijklmnopqrstuvwxyz "
    for _ in range(3):
        period = int(rng.integers(5, size // 6))
        pattern = synthetic.random_bytes(period, seed=int(rng.integers(1000)), alphabet=letters)
        rows.append((f"text repeated every {period}", synthetic.periodic_bytes(size, pattern),
                     f"~{period * np.log2(len(letters)) / size:.5f}"))
    for _ in range(4):
        rule, width = int(rng.integers(256)), int(rng.integers(20, 301))
        rows.append((f"CA rows, rule {rule}, {width} wide",
                     synthetic.ca_rows(size, rule, width, seed=int(rng.integers(1000))),
                     f"~{width / size:.5f}"))  # the random first row
    return rows


def _best_other(data: bytes) -> str:
    """The shortest of the cheap programs beyond lzma and zstd (`baselines.cheap_programs`)."""
    coded = cheap_programs(data)
    name = min(coded, key=coded.get)
    return f"{coded[name]:.4f} {name}"


def _total(point) -> str:
    if point is None:
        return "not run"
    return f"{point.epiplexity_bits_per_byte + point.entropy_bits_per_byte:.4f}"


def shuffle_law(preset: str, families: list[str] | None, sizes_kib: list[int]) -> None:
    """S and H of real text and of its lines shuffled, at each size; whether the law holds;
    S+H of the shuffled text beside the shortest cheap program's code of it."""
    print("| text, size | S orig -> shuffled | H orig -> shuffled | law | S+H shuffled | "
          "best other |\n|---|---|---|---|---|---|")
    for label, make in (("Python source", panel.python_source), ("docstrings", panel.docstrings)):
        for kib in sizes_kib:
            text = make(kib << 10)
            lines = synthetic.shuffled_lines(text, seed=6)
            real, shuffled = (estimators.estimate(d, preset=preset, families=families).curve[-1]
                              for d in (text, lines))
            (s0, h0), (s1, h1) = ((p.epiplexity_bits_per_byte, p.entropy_bits_per_byte)
                                  for p in (real, shuffled))
            print(f"| {label}, {kib} KiB | {s0:.4f} -> {s1:.4f} | {h0:.4f} -> {h1:.4f} | "
                  f"{'holds' if s1 < s0 and h1 > h0 else 'FAILS'} | {s1 + h1:.4f} | "
                  f"{_best_other(lines)} |", flush=True)


# Kinds of real text for `--kinds-of-text`, by file name ending, from the files this machine has.
TEXT_KINDS = {"C headers": (".h",), "JSON": (".json",), "JavaScript": (".js",), "CSS": (".css",),
              "CSV": (".csv",), "YAML": (".yaml", ".yml"), "text files": (".txt",),
              "Markdown": (".md",), "HTML": (".html", ".htm"), "XML": (".xml",),
              "Python stubs": (".pyi",), "shell": (".sh",)}


@functools.cache
def _files() -> list[str]:
    """Every file in the installed packages, `/usr/share`, `/usr/include` and
    `/usr/lib/python3`, sorted."""
    roots = [os.path.realpath(sysconfig.get_paths()["purelib"]), "/usr/share", "/usr/include",
             "/usr/lib/python3"]
    return sorted({os.path.join(folder, name) for root in roots
                   for folder, _, names in os.walk(root) for name in names})


def real_text(endings: tuple[str, ...], size: int) -> bytes:
    """Up to `size` bytes of the text files (`_files`) with these endings, in a seeded order."""
    paths = [path for path in _files() if path.endswith(endings)]
    random.Random(0).shuffle(paths)
    text = bytearray()
    for path in paths:
        try:
            with open(path, "rb") as file:
                content = file.read()
        except OSError:
            continue
        if b"\0" not in content:
            text += content
        if len(text) >= size:
            break
    return bytes(text[:size])


def kinds_of_text(preset: str, families: list[str] | None, size: int) -> None:
    """S+H of each kind of real text, in file order and its lines shuffled, beside the shortest
    cheap program's code of each."""
    print("| kind | size | S+H in order | best other | S+H lines shuffled | best other |\n"
          "|---|---|---|---|---|---|")
    for kind, endings in TEXT_KINDS.items():
        text = real_text(endings, size)
        row = [kind, f"{len(text) >> 10} KiB"]
        for data in (text, synthetic.shuffled_lines(text, seed=1)):
            point = estimators.estimate(data, preset=preset, families=families).curve[-1]
            row += [_total(point), _best_other(data)]
        print("| " + " | ".join(row) + " |", flush=True)


def _rule_classes() -> list[int]:
    """One elementary rule of each of the 88 classes that mirroring and complementing leave."""
    def mirror(rule: int) -> int:
        return sum(((rule >> i) & 1) << int(f"{i:03b}"[::-1], 2) for i in range(8))

    def complement(rule: int) -> int:
        return sum((1 - ((rule >> (7 - i)) & 1)) << i for i in range(8))
    return sorted({min(r, mirror(r), complement(r), mirror(complement(r))) for r in range(256)})


def every_rule(preset: str, families: list[str] | None, size: int, width: int,
               cell_bytes: bool, packed: bool) -> None:
    """S+H of cellular-automaton rows for every rule, beside lzma (the law allows no slack)."""
    print("| rule | S+H | lzma | zstd-19 | law |\n|---|---|---|---|---|")
    shape = {"glyphs": CELL_BYTES, "newlines": False} if cell_bytes else {}
    for rule in _rule_classes():
        data = (synthetic.cellular_automaton(size, rule, width, seed=rule + 1) if packed
                else synthetic.ca_rows(size, rule, width, seed=rule + 1, **shape))
        r = estimators.estimate(data, preset=preset, families=families)
        top, lzma = r.curve[-1], r.baselines["lzma_bits_per_byte"]
        total = top.epiplexity_bits_per_byte + top.entropy_bits_per_byte
        print(f"| {rule} | {total:.4f} | {lzma:.4f} | {r.baselines['zstd_bits_per_byte']:.4f} | "
              f"{'holds' if total <= lzma else 'FAILS'} |", flush=True)


def more_sources(size: int) -> list[tuple[str, bytes, str]]:
    """More structured data, each beside the compressors alone: the sweep that found binary
    records coded worse than lzma (now a row of `sources`), and chains of long memory."""
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, size, dtype=np.uint8).tobytes()

    def lines(make) -> bytes:  # lines from `make(i)` until `size` bytes
        out, total, i = [], 0, 0
        while total < size:
            out.append(make(i))
            total, i = total + len(out[-1]), i + 1
        return "".join(out).encode()[:size]
    names = ["alice", "bob", "carol", "dave", "erin", "frank"]
    words = ["alpha", "beta", "gamma", "delta"]
    colors = ["red", "green", "blue", "cyan", "magenta"]
    rows = np.random.default_rng(2)  # its own draws: the rows above keep their data
    fifty = ["".join(chr(97 + c) for c in rows.integers(0, 26, rows.integers(3, 10)))
             for _ in range(50)]
    def csv_fields() -> str:
        return (f"{colors[rows.integers(5)]},{rows.integers(1000)},"
                f"{rows.integers(10000) / 100:.2f}\n")
    # rows of fields whose random choices are the whole truth: bits a row, times rows
    tabular = [
        ("8 words of 4 a line", 16, lambda i: " ".join(
            words[k] for k in rows.integers(0, 4, 8)) + "\n"),
        ("TSV, 5 of 50 names", 5 * np.log2(50), lambda i: "\t".join(
            fifty[k] for k in rows.integers(0, 50, 5)) + "\n"),
        ("CSV: word, int, float", np.log2(5 * 1000 * 10000), lambda i: csv_fields()),
        ("same, a row number first", np.log2(5 * 1000 * 10000), lambda i: f"{i}," + csv_fields()),
    ]
    wave = 10000 * np.sin(np.arange(size // 2) * 0.01) + rng.normal(0, 30, size // 2)
    cyrillic = ["".join(chr(0x430 + k) for k in rng.integers(0, 32, rng.integers(2, 9)))
                .encode() for _ in range(300)]
    drifting = b"".join(synthetic.MarkovSource(2, 8, 0.3, seed=20 + k).sample(size // 4, seed=k)
                        for k in range(4))
    zipf = 1 / np.arange(1, 257) ** 1.1
    zipf /= zipf.sum()
    # a chain over 8 byte values far apart: every one of a byte's 8 binary decisions matters
    chain = synthetic.MarkovSource(3, 8, 0.5, seed=21)
    scattered = np.frombuffer(b"\x00\x13\x7f\x80\xa0\xc3\xfe\xff", np.uint8)[
        np.frombuffer(chain.sample(size, seed=22), np.uint8) - chain.first_symbol].tobytes()
    return [
        ("decimal counter", lines(lambda i: f"{i}\n"), "~0"),
        ("hex dump of random bytes", lines(lambda i: f"{16 * i:08x}  " + " ".join(
            f"{b:02x}" for b in noise[16 * i:16 * i + 16]) + "\n"), "?"),
        ("base64 of random bytes", base64.b64encode(noise)[:size], "6 (S 0)"),
        ("DNA letters at random", synthetic.random_bytes(size, seed=4, alphabet=b"ACGT"),
         "2 (S 0)"),
        ("hex of random bytes", noise[:size // 2].hex().encode(), "4 (S 0)"),
        ("bytes i.i.d., Zipf 1.1", np.random.default_rng(7).choice(256, size, p=zipf)
         .astype(np.uint8).tobytes(),
         f"{-(zipf * np.log2(zipf)).sum():.3f} (S 0)"),
        ("Markov 3, 8 bytes far apart", scattered, f"H >= {chain.entropy_rate_bits:.3f}"),
        ("JSON lines", lines(lambda i: json.dumps({
            "id": i, "name": names[rng.integers(6)], "score": round(rng.random() * 100, 2),
            "ok": bool(rng.random() < 0.7)}) + "\n"), "?"),
        ("CSV of normal numbers", lines(lambda i: ",".join(
            f"{x:.3f}" for x in rng.normal(size=3)) + "\n"), "?"),
        ("int16 sine and noise", wave.astype("<i2").tobytes(), "?"),
        ("int32 counter, steps 0-99", synthetic.counter(size, seed=3),
         f"{synthetic.counter_rate_bits():.3f}"),
        ("int64 counter, steps 0-999", synthetic.counter(size, 1000, 8, seed=3),
         f"{synthetic.counter_rate_bits(1000, 8):.3f}"),
        ("UTF-8 words (Cyrillic)", b" ".join(cyrillic[k] for k in
                                             rng.integers(0, 300, size))[:size], "?"),
        ("40,000 random bytes repeated", (noise[:40000] * (size // 40000 + 1))[:size],
         f"~{8 * min(40000, size) / size:.3f}"),
        ("Markov, random interleaved", bytes(np.column_stack([
            np.frombuffer(synthetic.MarkovSource(1, 4, 0.3, seed=2).sample(size // 2, seed=1),
                          np.uint8), np.frombuffer(noise[:size // 2], np.uint8)]).ravel()), "?"),
        ("Markov drifting by quarters", drifting, "?"),
        ("CA rows, rule 110, 1000 wide", synthetic.ca_rows(size, 110, 1000, seed=3),
         f"~{1000 / size:.5f}"),
        *(long_chain(size, *chain) for chain in LONG_CHAINS),
        *((label, data, f"~{bits * data.count(10) / len(data):.4f}")
          for label, bits, make in tabular for data in [lines(make)]),
    ]


# Chains over 2 symbols whose order outruns the contexts of most sizes: (order, concentration
# of the rows' Dirichlet, seed). Their rows are nearly all one symbol, so stepping a
# distribution to the stationary one does not settle for orders 16 and 20
# (`MarkovSource.stationary`): the truth given is what the true probabilities code the sample in.
LONG_CHAINS = [(12, 0.2, 2), (16, 0.1, 3), (20, 0.05, 8)]


def long_chain(size: int, order: int, concentration: float, seed: int) -> tuple[str, bytes, str]:
    source = synthetic.MarkovSource(order, 2, concentration, seed=seed)
    data = source.sample(size, seed=1)
    return (f"Markov order {order}, 2 symbols", data, f"H >= {source.bits(data).mean():.3f}")


# (order, alphabet, concentration of the rows' Dirichlet): from near-deterministic to flat rows
MARKOV_CHAINS = [(1, 2, 0.5), (1, 4, 0.3), (1, 64, 0.3), (1, 256, 0.3), (1, 256, 1.0), (2, 4, 0.3),
                 (2, 8, 0.5), (2, 32, 0.3), (2, 64, 1.0), (3, 2, 0.5), (3, 8, 0.3), (4, 4, 0.5),
                 (6, 2, 0.5)]


def winner(point) -> str:
    """The size (or model) whose run gave a frontier point, or "uniform" for the free code."""
    return point.model.get("name", "uniform") if point.family != "uniform" else "uniform"


def markov_oracle(preset: str, families: list[str] | None, size: int) -> None:
    """H of each chain beside its rate and the oracle's code length of the sample."""
    print("| order, symbols, concentration | rate | oracle | H | H / oracle | Bayes / oracle | S+H | "
          "lzma | winner |\n|---|---|---|---|---|---|---|---|---|")
    for order, alphabet, concentration in MARKOV_CHAINS:
        source = synthetic.MarkovSource(order, alphabet, concentration, seed=100 * order + alphabet)
        data = source.sample(size, seed=5)
        oracle = source.bits(data).mean()
        r = estimators.estimate(data, preset=preset, families=families)
        top = r.curve[-1]
        h, total = top.entropy_bits_per_byte, top.epiplexity_bits_per_byte + top.entropy_bits_per_byte
        bayes = source.posterior_bits(data).mean()
        print(f"| {order}, {alphabet}, {concentration} | {source.entropy_rate_bits:.4f} | "
              f"{oracle:.4f} | {h:.4f} | {h / oracle:.4f} | {bayes / oracle:.4f} | {total:.4f} | "
              f"{r.baselines['lzma_bits_per_byte']:.4f} | {winner(top)} |", flush=True)


def drawn_chains_laws(preset: str, families: list[str] | None, size: int, count: int,
                      orders: tuple[int, int]) -> None:
    """H of each drawn chain beside its rate and its sample's oracle, and which law it breaks."""
    from bench_pairing import drawn_chains
    print("| order, symbols, concentration | rate | oracle | H | H / rate | H / oracle | "
          "Bayes / oracle | 2 s.e. | S+H | lzma | winner | law |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")
    broken, checked = 0, 0
    for seed, source in enumerate(drawn_chains(count, orders=orders)):
        data = source.sample(size, seed=seed)
        rate, oracle = source.entropy_rate_bits, source.bits(data).mean()
        if oracle < 0.002:  # stuck in a corner of its states: nearly no bits to measure
            continue
        checked += 1
        r = estimators.estimate(data, preset=preset, families=families)
        top = r.curve[-1]
        h, noise = top.entropy_bits_per_byte, 2 * top.entropy_stderr_bits_per_byte
        law = ("H over 1.05 x rate" if h > 1.05 * rate else
               "H under rate - 2 s.e." if h < rate - noise else "holds")
        broken += law != "holds"
        bayes = source.posterior_bits(data).mean()
        print(f"| {source.order}, {source.alphabet}, {source.concentration} | {rate:.4f} | "
              f"{oracle:.4f} | {h:.4f} | {h / rate:.4f} | {h / oracle:.4f} | "
              f"{bayes / oracle:.4f} | {noise:.4f} | "
              f"{h + top.epiplexity_bits_per_byte:.4f} | "
              f"{r.baselines['lzma_bits_per_byte']:.4f} | {winner(top)} | {law} |", flush=True)
    print(f"\n{broken} of {checked} chains break a law ({count - checked} under 0.002 bits/byte left out)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick", choices=list(estimators.PRESETS))
    parser.add_argument("--size-kib", type=int, default=256)
    parser.add_argument("--families", nargs="+", default=None,
                        help="observer families (default all); one family alone can only "
                             "report an S+H at or above the all-family headline")
    parser.add_argument("--shuffle-law", action="store_true",
                        help="check the line-shuffle law on real text at --sizes-kib instead")
    parser.add_argument("--sizes-kib", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--kinds-of-text", action="store_true",
                        help="twelve kinds of real text from this machine's files, in order and "
                             "lines shuffled, at --size-kib instead")
    parser.add_argument("--markov-oracle", action="store_true",
                        help="H of Markov chains beside the rate and the oracle at --size-kib")
    parser.add_argument("--every-rule", type=int, metavar="WIDTH",
                        help="code cellular-automaton rows WIDTH cells wide for every rule "
                             "(one of each of the 88 classes) at --size-kib instead")
    parser.add_argument("--more-sources", action="store_true",
                        help="the table for more structured data (counters, hex dumps, "
                             "JSON and CSV lines, audio, ...) instead")
    parser.add_argument("--drawn", type=int, metavar="SEED",
                        help="the table for sources whose settings are drawn from SEED "
                             "(Markov chains, periods, any CA rule and width) instead")
    parser.add_argument("--drawn-chains", type=int, metavar="K",
                        help="the Markov laws on K drawn chains (bench/bench_pairing.py's) instead")
    parser.add_argument("--orders", type=int, nargs=2, default=(1, 5), metavar=("LOW", "HIGH"),
                        help="with --drawn-chains: the orders to draw from")
    parser.add_argument("--cell-bytes", action="store_true",
                        help="with --every-rule: cells as 0/1 bytes, no newlines between rows")
    parser.add_argument("--packed", action="store_true",
                        help="with --every-rule: cells packed 8 to a byte, no newlines")
    args = parser.parse_args()
    if not 1 <= args.orders[0] <= min(12, args.orders[1]):  # 2**12 states: the most drawn
        parser.error(f"--orders {args.orders[0]} {args.orders[1]}: LOW from 1 to 12, HIGH at "
                     "least LOW")
    print(f"machine: {machine()}")
    families = " ".join(args.families) if args.families else "every family"
    if args.shuffle_law:
        print(f"preset {args.preset}, {families}\n")
        return shuffle_law(args.preset, args.families, args.sizes_kib)
    size = args.size_kib * 1024
    if args.kinds_of_text:
        print(f"preset {args.preset}, {families}, {args.size_kib} KiB of each kind\n")
        return kinds_of_text(args.preset, args.families, size)
    if args.markov_oracle:
        print(f"preset {args.preset}, {families}, {args.size_kib} KiB\n")
        return markov_oracle(args.preset, args.families, size)
    if args.drawn_chains:
        print(f"preset {args.preset}, {families}, {args.size_kib} KiB\n")
        return drawn_chains_laws(args.preset, args.families, size, args.drawn_chains,
                                 tuple(args.orders))
    if args.every_rule:
        shape = (" as 0/1 bytes, no newlines" if args.cell_bytes else
                 " packed 8 to a byte" if args.packed else "")
        print(f"preset {args.preset}, {families}, {args.every_rule} cells a row{shape}, "
              f"{args.size_kib} KiB\n")
        return every_rule(args.preset, args.families, size, args.every_rule, args.cell_bytes,
                          args.packed)
    print(f"preset {args.preset}, {args.size_kib} KiB per source, {families}; bits per byte "
          "at the top budget\n")
    header = (f"| {'source':<28} | {'truth':>12} | {'S':>7} | {'H':>7} | {'S+H':>7} | "
              f"{'lzma':>7} | {'zstd-19':>7} | {'best other':>15} | {'transformer':>11} | "
              f"{'winner':<12} | seconds |")
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    rows = (drawn_sources(size, args.drawn) if args.drawn is not None else
            more_sources(size) if args.more_sources else sources(size))
    for name, data, truth in rows:
        started = time.perf_counter()
        r = estimators.estimate(data, preset=args.preset, families=args.families)
        top = r.curve[-1]
        own = r.families.get("transformer", [None])[-1]
        print(f"| {name:<28} | {truth:>12} | {top.epiplexity_bits_per_byte:>7.4f} | "
              f"{top.entropy_bits_per_byte:>7.4f} | "
              f"{top.epiplexity_bits_per_byte + top.entropy_bits_per_byte:>7.4f} | "
              f"{r.baselines['lzma_bits_per_byte']:>7.4f} | "
              f"{r.baselines['zstd_bits_per_byte']:>7.4f} | "
              f"{_best_other(data):>15} | {_total(own):>11} | "
              f"{winner(top):<12} | {time.perf_counter() - started:>7.1f} |", flush=True)


if __name__ == "__main__":
    main()
