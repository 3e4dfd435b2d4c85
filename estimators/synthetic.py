"""Datasets with known answers, generated on the spot: calibration sources and panel members."""
from __future__ import annotations

import re

import numpy as np


def random_bytes(size: int, seed: int = 0, alphabet: bytes | None = None) -> bytes:
    """Uniform bytes, or uniform over the bytes of `alphabet`: log2 of its size in bits/byte
    of entropy (8 for all bytes) and no structure."""
    rng = np.random.default_rng(seed)
    if alphabet is None:
        return rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    return bytes(rng.choice(np.frombuffer(alphabet, np.uint8), size))


def constant_bytes(size: int, value: int = ord("a")) -> bytes:
    return bytes([value]) * size


def periodic_bytes(size: int, period: bytes = b"abcdefgh") -> bytes:
    return (period * (size // len(period) + 1))[:size]


DENSE_STATES = 4096  # above, MarkovSource.stationary steps the chain instead of solving


class MarkovSource:
    """An order-k Markov chain over `alphabet` symbols with random transition rows.

    `entropy_rate_bits` is exact (stationary distribution times row entropies), so the
    source gives a floor that any learner's per-byte entropy must stay above."""

    def __init__(self, order: int = 1, alphabet: int = 16, concentration: float = 0.3,
                 seed: int = 0, first_symbol: int = ord("a")):
        rng = np.random.default_rng(seed)
        if alphabet + first_symbol > 256:
            first_symbol = 256 - alphabet  # keep every symbol a byte
        self.order, self.alphabet, self.first_symbol = order, alphabet, first_symbol
        self.concentration = concentration
        self.states = alphabet ** order
        self.transitions = rng.dirichlet(np.full(alphabet, concentration), size=self.states)

    def _next_state(self, state, symbol):  # ints, or arrays of them
        return (state * self.alphabet + symbol) % self.states

    def stationary(self, tolerance: float = 1e-13, most_steps: int = 100_000) -> np.ndarray:
        """The chain's stationary distribution over states. Up to `DENSE_STATES` states it
        solves the balance equations exactly (4,096 states: seconds, where the dense matrix's
        eigenvectors took minutes); above, it steps a distribution forward through the sparse
        transitions (each state has `alphabet` successors) until it stops changing, which a
        chain whose rows are nearly all one symbol may not do within `most_steps`: then this
        raises."""
        states = np.arange(self.states)[:, None]
        successors = self._next_state(states, np.arange(self.alphabet))
        if self.states <= DENSE_STATES:
            balance = np.zeros((self.states, self.states))
            np.add.at(balance, (successors, states), self.transitions)
            balance[np.diag_indices(self.states)] -= 1.0  # (P^T - I) pi = 0 ...
            balance[-1] = 1.0  # ... with one equation traded for sum(pi) = 1
            total = np.zeros(self.states)
            total[-1] = 1.0
            return np.linalg.solve(balance, total)
        distribution = np.full(self.states, 1.0 / self.states)
        for _ in range(most_steps):
            after = np.bincount(successors.ravel(), (distribution[:, None] * self.transitions)
                                .ravel(), minlength=self.states)
            # half a step from before: a chain that cycles through its states still settles
            after = 0.5 * (after / after.sum() + distribution)
            if np.abs(after - distribution).sum() < tolerance:
                return after
            distribution = after
        raise ArithmeticError(f"no stationary distribution within {most_steps} steps")

    @property
    def entropy_rate_bits(self) -> float:
        stationary = self.stationary()
        p = self.transitions
        row_entropy = -(p * np.log2(np.where(p > 0, p, 1))).sum(1)
        return float(stationary @ row_entropy)

    def _states(self, sample: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Each byte's state before it (the chain starts in state 0) and its symbol."""
        symbols = np.frombuffer(sample, np.uint8).astype(np.int64) - self.first_symbol
        padded = np.concatenate([np.zeros(self.order, np.int64), symbols])
        state = sum(padded[self.order - j:len(padded) - j] * self.alphabet ** (j - 1)
                    for j in range(1, self.order + 1))
        return state, symbols

    def bits(self, sample: bytes) -> np.ndarray:
        """Bits each byte of `sample` costs under the true transition probabilities (from
        the state `sample` starts in): the oracle's code length, byte by byte."""
        state, symbols = self._states(sample)
        return -np.log2(self.transitions[state, symbols])

    def posterior_bits(self, sample: bytes) -> np.ndarray:
        """Bits each byte of `sample` costs under the Bayes posterior given the chain's order,
        alphabet and the Dirichlet law its rows were drawn from, from the counts of all the
        other bytes (leave one out). Over chains drawn from that law no learner codes a byte
        held out of the sample shorter on average, and none of ours knows those three: this
        is how near the oracle the sample lets `H` come (thin where states are many)."""
        state, symbols = self._states(sample)
        pair = state * self.alphabet + symbols
        pairs = np.bincount(pair, minlength=self.states * self.alphabet)
        visits = np.bincount(state, minlength=self.states)
        a = self.concentration
        return -np.log2((pairs[pair] - 1 + a) / (visits[state] - 1 + self.alphabet * a))

    def sample(self, size: int, seed: int = 0) -> bytes:
        rng = np.random.default_rng(seed)
        cumulative = self.transitions.cumsum(1)
        uniforms = rng.random(size)
        out = np.empty(size, dtype=np.uint8)
        state = 0
        for i in range(size):
            symbol = min(int(np.searchsorted(cumulative[state], uniforms[i], side="right")),
                         self.alphabet - 1)
            out[i] = self.first_symbol + symbol
            state = self._next_state(state, symbol)
        return out.tobytes()


def _generations(rule: int, width: int, seed: int, count: int) -> np.ndarray:
    """`count` successive rows (0/1 cells) of an elementary cellular automaton of `width` cells
    on a ring, from a random first row."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 2, width, dtype=np.uint8)
    table = np.array([(rule >> i) & 1 for i in range(8)], dtype=np.uint8)
    rows = np.empty((count, width), dtype=np.uint8)
    for n in range(count):
        rows[n] = cells
        cells = table[(np.roll(cells, 1) << 2) | (cells << 1) | np.roll(cells, -1)]
    return rows


def cellular_automaton(size: int, rule: int = 30, width: int = 64, seed: int = 0) -> bytes:
    """Successive rows of an elementary cellular automaton of `width` cells from a random
    start, packed eight cells to a byte."""
    rows = _generations(rule, width, seed, (size * 8) // width + 1)
    return np.packbits(rows.ravel())[:size].tobytes()


def repeated_sentence(size: int, sentence: bytes = b"The cat sat on the mat. ") -> bytes:
    """A short sentence over and over: all of it is structure, almost none of it entropy."""
    return periodic_bytes(size, sentence)


WORDS = (b"alpha", b"beta", b"gamma", b"delta", b"eps")


def random_words(size: int, words: tuple[bytes, ...] = WORDS, seed: int = 0) -> bytes:
    """Words drawn uniformly and independently, each followed by a space. The space ends each
    word, so its choice is all the entropy: `words_rate_bits(words)` per byte."""
    rng = np.random.default_rng(seed)
    count = size // min(len(w) + 1 for w in words) + 1
    return b" ".join(np.array(words)[rng.integers(0, len(words), count)])[:size]


def words_rate_bits(words: tuple[bytes, ...] = WORDS) -> float:
    """Entropy rate of `random_words`: log2 of the choices over the mean bytes a word takes."""
    return float(np.log2(len(words)) / np.mean([len(w) + 1 for w in words]))


def ca_rows(size: int, rule: int = 30, width: int = 64, seed: int = 0, glyphs: bytes = b".#",
            newlines: bool = True) -> bytes:
    """An elementary cellular automaton as text: one row of `width` cells per line ('#' alive,
    '.' dead), each row one step of `rule` from the row above (wrapping at the edges), from a
    random first row. Given the row above, every cell is determined: once the rule is learned,
    only the first row is entropy. Rule 15 makes each row the shifted negation of the last.
    `glyphs` are the dead and live cells' bytes (b"\\x00\\x01": cells as bytes); without
    `newlines` the rows follow each other with nothing between."""
    rows = np.frombuffer(glyphs, dtype=np.uint8)[_generations(rule, width, seed, size // width + 1)]
    if newlines:
        rows = np.hstack([rows, np.full((len(rows), 1), 10, dtype=np.uint8)])
    return rows.ravel()[:size].tobytes()


def binary_records(size: int, seed: int = 0) -> bytes:
    """16-byte records as a logger writes them, little-endian: an index, a timestamp that
    steps 1-4 at random, a float32 drawn from N(0, 1) and a constant. The step and the float
    are the entropy: `RECORDS_RATE_BITS` per byte."""
    rng = np.random.default_rng(seed)
    count = -(-size // 16)
    records = np.zeros(count, dtype=[("index", "<u4"), ("time", "<u4"), ("value", "<f4"),
                                     ("scale", "<f4")])
    records["index"] = np.arange(count)
    records["time"] = 1_600_000_000 + np.cumsum(rng.integers(1, 5, count))
    records["value"] = rng.normal(size=count)
    records["scale"] = 1.5
    return records.tobytes()[:size]


def counter(size: int, steps: int = 100, width: int = 4, seed: int = 0) -> bytes:
    """A little-endian unsigned counter of `width` bytes that steps by 0 to steps-1 at random:
    log2(steps) / width bits per byte of entropy (`counter_rate_bits`)."""
    rng = np.random.default_rng(seed)
    values = np.cumsum(rng.integers(0, steps, -(-size // width)), dtype=np.uint64)
    return values.astype(f"<u{width}").tobytes()[:size]


def counter_rate_bits(steps: int = 100, width: int = 4) -> float:
    return float(np.log2(steps)) / width


# 2 bits of step, and a float32 of N(0, 1): its differential entropy, 2.047 bits, less the
# mean log2 of its spacing (2**(e - 23) for values in [2**e, 2**(e+1)); E[e] = -1.417)
RECORDS_RATE_BITS = (2 + 2.047 + 23 + 1.417) / 16


def alternating_blocks(size: int, block: int = 1024) -> bytes:
    """Random blocks alternating with zero blocks, `block` bytes each: 4 bits/byte whatever
    codes them, and a held-out sample of a few blocks can draw mostly one kind."""
    return b"".join(random_bytes(block, seed=k) + bytes(block)
                    for k in range(size // (2 * block)))


def shuffled_lines(data: bytes, seed: int = 0) -> bytes:
    """The same lines in a random order: local structure stays, long-range order is gone."""
    lines = data.split(b"\n")
    order = np.random.default_rng(seed).permutation(len(lines))
    return b"\n".join(lines[i] for i in order)


def shuffled_words(data: bytes, seed: int = 0) -> bytes:
    """The same words (runs of non-whitespace) in a random order, the whitespace between them
    where it was: the words' spelling stays, the grammar and the layout's meaning are gone."""
    pieces = re.split(rb"(\s+)", data)  # words at even indices, the whitespace between at odd
    at = [i for i in range(0, len(pieces), 2) if pieces[i]]  # not the empty ends
    order = np.random.default_rng(seed).permutation(len(at))
    words = [pieces[i] for i in at]
    for i, k in zip(at, order):
        pieces[i] = words[k]
    return b"".join(pieces)


def shuffled_bytes(data: bytes, seed: int = 0) -> bytes:
    """The same byte histogram in a random order: only order-0 statistics remain."""
    array = np.frombuffer(data, dtype=np.uint8)
    return np.random.default_rng(seed).permutation(array).tobytes()


def edited(data: bytes, rate: float, kind: str = "changed", seed: int = 0) -> tuple[bytes, np.ndarray]:
    """`data` with about `rate` of its bytes `changed` to a random byte, `inserted` before or
    `deleted` (a near-duplicate); and where in the result each edit lies. A change at rate r
    costs the ideal code H(r) + 8r bits a byte (where, and what)."""
    rng = np.random.default_rng(seed)
    out, where = bytearray(), []
    for byte, draw, new in zip(data, rng.random(len(data)), rng.integers(0, 256, len(data))):
        if draw >= rate:
            out.append(byte)
            continue
        where.append(len(out))
        out += {"changed": bytes([int(new)]), "inserted": bytes([int(new), byte]),
                "deleted": b""}[kind]
    return bytes(out), np.array(where)
