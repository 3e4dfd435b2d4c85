"""Context mixing: a count-based observer that predicts each byte bit by bit (numba-compiled).

A byte is coded as eight binary decisions, most significant bit first. For each decision
every context model offers a probability from an adaptive counter: the last k bytes for
several orders k, the current word, the line so far, the field of the line (separators so far:
rows of fields end after the last), the three bytes one line up and how
much of the line so far matches the line above (row-structured data; or one record up, the
record length found from the data: `estimators/records.py`), sparse contexts that skip bytes
(records and machine code, where a field depends on the byte two, four or eight back rather
than the last), a match model that follows the longest earlier repeat anywhere in the history
(what lzma and zstd exploit: `estimators/match_model.py`) and, in `cm-order6`, a delta model
of integer data (the difference from the byte one stride back: `estimators/delta_model.py`).
A logistic mixer combines them with four weight sets chosen by small contexts (the partial
byte; the match state and last byte; the longest context seen before and how often; the
match state and the field of the line); two adaptive probability maps refine the result.
A context's counters for one nibble are a bucket of 16 in its hash table, in either bucket of a
pair; a new one replaces the less-seen of the two. One way, with every collision
a reset, cost 0.3-1.7% of H on Markov chains at 256 KiB, more than tables 8x larger won back.

Why it is a valid prequential code whatever the hash collisions do: every probability is
computed from earlier bytes only, each binary probability is clipped strictly inside (0, 1),
and a byte's probability is the product of eight of them along a path of a binary tree, so
the 256 byte probabilities sum to exactly one.

The kernels release the GIL (`nogil`): a sweep codes with them on a thread of its own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from estimators import flops
from estimators.blending import prefetch
from estimators.delta_model import (DELTA_DECAY, DELTA_SEEN, DELTA_STRIDES, cumulate,
                                    delta_open, delta_rows, delta_shape, delta_shape_bytes,
                                    delta_stretch, learn_deltas)
from estimators.holdout import (EVALUATING, LEARNING, PAIRING, RELEARNING, Holdout,
                                block_views, held_out, mixed_code, read_only, visible)
from estimators.kernels import kernel
from estimators.match_model import (LONG_MATCH, LONG_MATCH_EVERY, MATCH_BUCKETS,
                                    MATCH_RECOVER_BYTES, RUNNING_HASH_SEED, hash_byte,
                                    index_slot, long_match_hash, long_step, realign,
                                    recent_hash, shared_before, verified_run)
from estimators.records import (RECORD_DECIDE, TABLE_BYTES, learn_record, record_above,
                                record_guesses, record_length, record_table, sampled)

APM_RATE = 0.02
# The line-so-far context hashes the bytes since the last newline while there are at most this
# many (beyond, the last this many and a flag). A byte context reaches back into the line above;
# where lines are shuffled that line is unrelated, and no context but this one held the line's
# start at the right length (indentation, then the first word). Online, `cm-order6` / `cm-order24`,
# 256 KiB: Python source 1.3222 -> 1.3039 / 1.3304 -> 1.3247, its lines shuffled 1.5346 ->
# 1.4801 / 1.4879 -> 1.4654, docstrings 1.6962 -> 1.6880 / 1.7123 -> 1.7100. 32 and 64 coded
# within 0.002 of 16; the line's first 8 bytes and last 3 beyond it, 0.013 longer on shuffled
# source.
LINE_PREFIX_MAX = 16
# The final probability blends the mixer's and the two maps' in the logistic domain, with
# weights learned as the mixer's are (one more row of `weights`, BLEND_SET). Fixed at 0.5,
# 0.25 and 0.25 in probability, the maps' noise (they adapt at APM_RATE) cost random bytes
# 8.007-8.012 bits/byte; learned, 8.0002-8.0003, Python source 0.1-0.7% less and binary
# records 0.1-2.6% less (one pass, 1 MiB and 256 KiB; Markov chains 0.4% less to 0.02% more,
# rows of rule 30 0.0002 bits/byte more). It costs the small sizes up to a quarter of their
# pass (`bench/bench_count.py --against`).
BLEND_RATE = 0.0005
BLEND_START = (0.5, 0.25, 0.25)
# The longest line whose bytes above make the column context (rows of a cellular automaton
# 9,000 cells wide cost 1.0 bits/byte at 4,096, near lzma's 1.12).
LINE_ABOVE_MAX = 1 << 16
P_CLIP = 1.0 / 65536  # floor on either binary outcome: a sure miss costs at most 16 bits
MIXER_RATE = 0.004
MIXER_RATE_START = 0.03  # faster at first, while the weights are far from where they settle
# match pointer and length, word hash, previous word hash, last newline, line length, bytes
# left to recover a repeat after a change, and the line's field: the separators since its
# indentation (-1 while in it, -2 once a control byte came: binary data has no fields)
STATE_FIELDS = 8
FIELDS = 7
# After them in the state: mixer updates so far, the record length the column context uses
# where lines do not give it (0: none found), record samples taken, and 1 where the length was
# found by single bytes above (`records.record_length`).
MIXER_UPDATES, RECORD_LENGTH, RECORD_SAMPLES = STATE_FIELDS, STATE_FIELDS + 1, STATE_FIELDS + 2
RECORD_BY_BYTE = STATE_FIELDS + 3
# Sparse contexts: two bytes each, so many back (0: the position in a 4-byte word instead).
# On 256 KiB of Python's shared objects they took the largest size from 2.93 to 2.79 bits/byte.
SPARSE_BACK = np.array([[2, 3], [4, 8], [1, 3], [1, 0]], dtype=np.int64)
SPARSE_CONTEXTS = len(SPARSE_BACK)
# Where each group of mixer weight sets starts: 256 chosen by the partial byte, 2048 by match
# state and last byte, 16 x 9 by the longest byte context seen before and how often (PPM's
# choice of context; `_longest_seen`), then 8 x 8 by the match state and the line's field
# (0-6, 7 for the rest; 0 in the indentation and in binary data). Split by the last byte, each
# match state's trust in a repeat is learned 256 times over: 8,000 random bytes written twice in
# 16 KiB cost 0.0148 bits/byte over zstd with three sets, 0.0064 with the fourth (Python source
# at 256 KiB: 1.3150 and 1.3086). Split by the field too, each column of a CSV has weights of its
# own: 256 KiB of rows of a counter, a word, an integer and a float, 1.4031 -> 1.3490 bits/byte
# (`cm-order24`; `docs/count-family.md`, "The field of the line").
MATCH_SETS_AT, CONFIDENCE_SETS_AT = 256, 256 + 2048
MAX_ORDERS = 16  # byte-context orders a size may mix
MATCH_ONLY_SETS_AT = CONFIDENCE_SETS_AT + MAX_ORDERS * 9
WEIGHT_SETS = MATCH_ONLY_SETS_AT + 8 * 8
BLEND_SET = WEIGHT_SETS  # the row after them: the final blend's three weights
LOG_TABLES, LOG_MATCH, LOG_COUNTERS, LOG_APM = 0, 1, 2, 3  # arrays an evaluation writes to
LOG_KIND_AT = 56  # a log entry: the array's kind above this bit, the entry written below
LOG_WHERE = (1 << LOG_KIND_AT) - 1
APM_CONTEXTS = 256 + 65536  # the two probability maps' rows: by partial byte, and by it and the last byte


@dataclass(frozen=True)
class ContextMixingConfig:
    """One size of the family: which contexts it mixes and how large its hash tables are."""

    name: str
    orders: tuple[int, ...]  # byte-context orders; order 0 is the partial byte alone
    word: bool  # contexts of the current and previous word, the line so far and its field
    column: bool  # the bytes one line up (cells of row-by-row data depend on them); the digit
    # up and its carry (a counter's next value is the one above plus one)
    match_min: int  # bytes a repeat must share before the match model follows it
    table_bits: int  # log2 of 16-counter buckets per context (bounded memory)
    sparse: bool = False  # four contexts of bytes that skip others (SPARSE_CONTEXTS)
    # A counter adapts at 1/(n + 1.5) after n observations until n reaches this limit, then at
    # that fixed rate: high for stationary sources, low to follow data whose statistics drift.
    counter_limit: int = 255
    long_repeats: bool = True  # a second match index, by the last LONG_MATCH bytes
    delta: bool = False  # the delta model of integer data (DELTA_STRIDES)

    def __post_init__(self):
        if not 0 < len(self.orders) <= MAX_ORDERS:
            raise ValueError(f"{self.name}: 1 to {MAX_ORDERS} byte-context orders, "
                             f"not {len(self.orders)}")

    @property
    def contexts(self) -> int:
        return len(self.orders) + 3 * self.word + 2 * self.column + SPARSE_CONTEXTS * self.sparse

    @property
    def inputs(self) -> int:
        """Mixer inputs: one per context, one for the match model, one for the delta model."""
        return self.contexts + 1 + self.delta

    @property
    def match_bits(self) -> int:
        """log2 of each of the match model's indexes of earlier positions."""
        return self.table_bits + 2

    @property
    def state_bytes(self) -> int:
        """Memory of the model's learned state (`ContextMixingModel`): its counter tables, match
        index, mixer weights and probability maps."""
        return (self.contexts * (16 << self.table_bits) * 4
                + ((1 + self.long_repeats) << self.match_bits) * 8
                + (WEIGHT_SETS + 1) * self.inputs * 8 + APM_CONTEXTS * 33 * 4
                + self.column * TABLE_BYTES + self.delta * delta_shape_bytes())

    def model(self) -> "ContextMixingModel":
        return ContextMixingModel(self)

    def train_ops(self, tokens: int) -> float:
        guesses = record_guesses(tokens) if self.column else 0.0
        return flops.context_mixing_train_ops(self.contexts, tokens, guesses, self.delta)

    def eval_ops(self, tokens: int, warm: int) -> float:
        return flops.context_mixing_eval_ops(self.contexts, tokens, warm, self.delta)

    def info(self) -> dict:
        """What a result says about this size: its contexts and how many counters it adapts."""
        return {"name": self.name, "params": self.contexts * 15 << self.table_bits,
                "orders": list(self.orders), "word": self.word, "column": self.column,
                "sparse": self.sparse, "counter_limit": self.counter_limit,
                "match_min": self.match_min, "long_repeats": self.long_repeats,
                "table_bits": self.table_bits, "delta": self.delta}

    def fitted(self, data_bytes: int) -> "ContextMixingConfig":
        """The same model with tables no larger than the data can fill (faster on small data):
        a bucket per two bytes. Half that lost 1-5% of H on sparse Markov chains (256 KiB,
        order 2 over 32 symbols: 3.7% above the rate against 4.7%), where long contexts
        evicted each other."""
        bits = min(self.table_bits, max(10, math.ceil(math.log2(max(data_bytes, 2))) - 1))
        return replace(self, table_bits=bits)


def _stretch_table() -> np.ndarray:
    p = (np.arange(4096) + 0.5) / 4096
    return np.log(p / (1 - p)).astype(np.float64)


def _rate_table(limit: int) -> np.ndarray:
    n = np.arange(1024)
    return np.floor(65536 * 2 / (2 * np.minimum(n, limit) + 3)).astype(np.int64)


class ContextMixingModel:
    """The learned state of one model: counters, match index, mixer weights and maps."""

    def __init__(self, cfg: ContextMixingConfig):
        self.cfg = cfg
        self.tables = np.zeros((cfg.contexts, 16 << cfg.table_bits), dtype=np.uint32)
        # by a hash of the last `match_min` bytes, then (upper half) of the last LONG_MATCH
        self.match_table = np.full((1 + cfg.long_repeats) << cfg.match_bits, -1, dtype=np.int64)
        self.match_counters = np.full(2 * (MATCH_BUCKETS + 1), 1 << 31, dtype=np.uint32)
        self.weights = np.full((WEIGHT_SETS + 1, cfg.inputs), 0.3, dtype=np.float64)
        self.weights[BLEND_SET, :len(BLEND_START)] = BLEND_START
        grid = 1.0 / (1.0 + np.exp(-(np.arange(33) - 16) / 2.0))
        self.apm = np.tile(grid, (APM_CONTEXTS, 1)).astype(np.float32)
        self.state = np.zeros(RECORD_BY_BYTE + 1, dtype=np.int64)
        self.state[4] = self.state[FIELDS] = -1
        self.records = record_table(cfg.column)  # the record length's guesses (`records`)
        self.deltas = np.zeros(delta_shape(cfg.delta), dtype=np.float32)
        # each stride's recent code length, plain counts', and the bytes counted
        self.delta_costs = np.full(DELTA_SEEN + 1, 8.0 / (1.0 - DELTA_DECAY))
        self.delta_costs[DELTA_SEEN] = 0
        self.orders = np.asarray(cfg.orders, dtype=np.int64)
        self.stretch = _stretch_table()
        self.rates = _rate_table(cfg.counter_limit)
        # the repeat the online pass was following as it reached each held-out block, by the
        # block's first byte (`code_held_out`): where a held-out block starts its own
        self.repeats_at: dict[int, tuple[int, int, int]] = {}

    def _kernel_args(self) -> tuple:
        c = self.cfg
        return (self.orders, c.word, c.column, c.sparse, c.match_min, c.long_repeats,
                self.tables, self.match_table, self.match_counters, self.weights, self.apm,
                self.records, self.deltas, self.delta_costs)

    def code(self, data: np.ndarray, start: int, stop: int, holdout: "Holdout",
             per_byte: np.ndarray | None = None) -> tuple[float, int]:
        """Code the training bytes of data[start:stop] (history data[:start] already seen)
        and learn from each after coding it. Returns (bits, bytes coded)."""
        out = per_byte if per_byte is not None else np.zeros(1)
        data = read_only(data)
        # a tuple, not an array: an array handed to the inlined helpers cost two atomic
        # reference counts per history byte read (9% of a pass)
        view = holdout.view(stop, len(data) + 1, LEARNING)
        bits, coded, _ = _code(data, start, stop, view, True, *self._kernel_args(), self.state,
                               self.stretch, self.rates, out, per_byte is not None,
                               np.zeros(1, dtype=np.int64), np.zeros(1), 0)  # nothing logged
        return bits, coded

    def code_held_out(self, data: np.ndarray, begin: int, holdout: "Holdout") -> tuple[float, int]:
        """Bits and bytes of the held-out block at `begin` as the online pass, standing just
        before it, would have coded it had it been a training block: learning from each byte
        after coding it, reading only training bytes. Then all of it is forgotten (every write
        logged and rolled back) and the pass goes on as if it had skipped the block."""
        self.repeats_at[begin] = (int(self.state[0]), int(self.state[1]), int(self.state[6]))
        data = read_only(data)
        view = holdout.view(begin, begin, PAIRING)
        size = _log_size(1 << holdout.shift, 0, self.cfg.contexts)
        log_at, log_old = np.zeros(size, dtype=np.int64), np.zeros(size)
        weights = self.weights.copy()
        bits, coded, logged = _code(data, begin, min(begin + (1 << holdout.shift), len(data)),
                                    view, True, *self._kernel_args(), self.state.copy(),
                                    self.stretch, self.rates, np.zeros(1), False, log_at,
                                    log_old, 0)
        _roll_back(log_at, log_old, logged, self.tables, self.match_table, self.match_counters,
                   self.apm)
        self.weights[:] = weights
        return bits, coded

    def evaluate(self, data: np.ndarray, seen: int, holdout: "Holdout",
                 online: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Bits and bytes of every held-out block under the model trained on data[:seen].

        Each block is coded as if it came after everything the model learned from: its memory
        is the training bytes before `seen`, wherever they lie, plus the held-out blocks before
        it and the block's own earlier bytes (the context a model conditions on, as a
        transformer on its window), none of which it learns from. Every block is coded three
        or four ways and costs their mixture, weighted by how well each coded the blocks before
        (`mixed_code`):
        - uniform: 8 bits a byte. A model that drifted away from old data (after 128 KiB of
          one constant byte, random bytes cost it 8.4-8.8 bits/byte) codes no worse than it;
        - frozen: nothing is learned;
        - adaptive: the model first relearns its counters and repeats from the training bytes
          just before the block (`holdout.warm` of them, those it saw), then learns from each
          block byte after coding it, as it did online, reading only bytes before each. Text
          drifts from file to file; this recovers the local statistics the online code
          enjoyed (Python source at 256 KiB, cm-order6: 1.26 bits/byte frozen, 0.95
          adaptive). The mixer and the maps do not relearn: on bytes the counters had counted
          already, long contexts never missed and they learned to trust them (cm-order6 coded
          held-out blocks of sorted words at 3.79 bits/byte, of int16 audio at 5.09, where
          the online code paid 3.37 and 4.65; now 3.42 and 4.58);
        - online, where given: each block as the pass coded it standing just before it
          (`PairedLoss`), the learner as it was there, for data whose statistics change
          along the file (`mixed_code`).
        None changes the model: every write is logged and rolled back."""
        frozen, adaptive, count = self.evaluate_both_ways(data, seen, holdout)
        return mixed_code(frozen, adaptive, count, online), count

    def evaluate_both_ways(self, data: np.ndarray, seen: int,
                           holdout: "Holdout") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bits of every held-out block coded frozen, bits coded adaptively, and its bytes."""
        data = read_only(data)
        view = holdout.view(seen, 0, EVALUATING)
        size = _log_size(1 << holdout.shift, holdout.warm, self.cfg.contexts)
        starts = holdout.block_starts(len(data))
        repeats = np.array([self.repeats_at.get(int(b), (0, 0, 0)) for b in starts],
                           dtype=np.int64).reshape(len(starts), 3)
        frozen, adaptive, count = _evaluate(
            data, seen, view, starts, repeats, holdout.warm, *self._kernel_args(), self.state,
            self.stretch, self.rates, np.zeros(size, dtype=np.int64), np.zeros(size))
        return frozen, adaptive, count


@kernel(inline="always")
def _remember(log_at, log_old, logged, kind, where, old):
    """Log one write made while evaluating: which array and entry, and its old value."""
    log_at[logged] = (kind << LOG_KIND_AT) | where
    log_old[logged] = old
    return logged + 1


@kernel(nogil=True)
def _roll_back(log_at, log_old, logged, tables, match_table, match_counters, apm):
    """Undo the logged writes, newest first: the model is as it was before the block."""
    width = tables.shape[1]
    for n in range(logged - 1, -1, -1):
        kind, where = log_at[n] >> LOG_KIND_AT, log_at[n] & LOG_WHERE
        if kind == LOG_TABLES:
            tables[where // width, where % width] = np.uint32(log_old[n])
        elif kind == LOG_MATCH:
            match_table[where] = np.int64(log_old[n])
        elif kind == LOG_COUNTERS:
            match_counters[where] = np.uint32(log_old[n])
        else:
            apm[where // 33, where % 33] = np.float32(log_old[n])


@kernel(inline="always")
def _confidence(tables, base, i):
    """How often context i's bucket was seen: 0 unknown, else 1 + log2 of the observations of
    its first counter (the one every visit updates), capped at 8."""
    if i < 0 or base[i] < 0:
        return 0
    n = np.int64(tables[i, base[i] + 1] & np.uint32(1023))
    level = 1
    while n > 0 and level < 8:
        n >>= 1
        level += 1
    return level


@kernel(inline="always")
def _longest_seen(tables, base, n_orders):
    """The third weight set within its group: the longest byte context seen before (its index
    in `orders`) and how often (`_confidence`). Chosen by how often the two longest orders were
    seen, as before, it told little where those are rarely seen (text under contexts of order
    16 and 24): on 256 KiB of Python source `cm-order24` coded 1.3514 bits/byte online, now
    1.3304, and the same lines shuffled 1.5152, now 1.4894 (PPMd of order 16: 1.4550)."""
    for i in range(n_orders - 1, 0, -1):
        level = _confidence(tables, base, i)
        if level > 1:
            return i * 9 + level
    return _confidence(tables, base, 0)


# The logistic function tabulated over [-16, 16] in steps of 1/64 and interpolated (error below
# 4e-6; an exp per bit took 14% of a pass). Beyond 16 it is within 1.2e-7 of 0 or 1.
SQUASH_STEPS = 64
_SQUASH = 1.0 / (1.0 + np.exp(-np.arange(-16 * SQUASH_STEPS, 16 * SQUASH_STEPS + 1) / SQUASH_STEPS))


@kernel(inline="always")
def _squash(x: float) -> float:
    t = (min(max(x, -16.0), 16.0) + 16.0) * SQUASH_STEPS
    i = min(np.int64(t), len(_SQUASH) - 2)
    return _SQUASH[i] + (_SQUASH[i + 1] - _SQUASH[i]) * (t - i)


@kernel(inline="always")
def _digit(c: int) -> bool:
    return 48 <= c <= 57


@kernel(inline="always")
def _alnum(c: int) -> bool:
    return _digit(c) or (65 <= c <= 90) or (97 <= c <= 122) or c == 95 or c >= 128


@kernel(inline="always")
def _separator(c: int) -> bool:
    """Whether byte c ends a field of a line (comma, tab, semicolon, bar, space): the field
    context counts them after the indentation. Rows of five names from 50, tab-separated: a
    newline cost 1.98 bits and a tab 0.30 without it (a name's end was followed by a newline one
    time in five), 0.001 with it (`tests/test_context_mixing.py`; `docs/count-family.md`, "The
    field of the line")."""
    return c == 44 or c == 9 or c == 59 or c == 124 or c == 32


@kernel(inline="always")
def _indent(c: int) -> bool:
    """A byte of a line's indentation (space or tab), before its first field."""
    return c == 32 or c == 9


@kernel(inline="always")
def _control(c: int) -> bool:
    """A byte that text has not (binary data has no fields)."""
    return c < 9 or 13 < c < 32 or c == 127


@kernel(inline="always")
def _context_hashes(data, pos, view, orders, match_min, word, column, sparse, state, out):
    """One 64-bit hash per context for the byte at `pos`; returns the match model's hash.

    A single running hash walks back over the last bytes (one multiply per byte) and each
    order takes its value on the way; the bucket lookup mixes it well later."""
    deepest = max(orders[len(orders) - 1], match_min)
    h, i, match_hash = RUNNING_HASH_SEED, 0, np.uint64(0)
    for k in range(deepest + 1):
        if k > 0:
            p = pos - k
            h = hash_byte(h, data[p] if visible(p, pos, view) else 0)
        while i < len(orders) and orders[i] == k:
            out[i] = h + np.uint64(k)
            i += 1
        if k == match_min:
            match_hash = h
    j = len(orders)
    col = pos - state[4] - 1  # bytes of the line so far
    if word:
        out[j] = (np.uint64(state[2]) * np.uint64(0x9E3779B1) + np.uint64(state[3])) \
            * np.uint64(0xBF58476D1CE4E5B9)
        j += 1
        # the line so far (LINE_PREFIX_MAX)
        h = np.uint64(0xD6E8FEB86659FD93) + np.uint64(col > LINE_PREFIX_MAX)
        for d in range(1, min(col, LINE_PREFIX_MAX) + 1):
            p = pos - d
            h = hash_byte(h, data[p] if visible(p, pos, view) else 0)
        out[j] = h
        j += 1
        # the field of the line (separators so far), the word so far and the last byte
        h = hash_byte(np.uint64(0x94D049BB133111EB) + np.uint64(min(state[FIELDS], 63) + 2),
                      data[pos - 1] if visible(pos - 1, pos, view) else 256)
        out[j] = (h ^ np.uint64(state[2])) * np.uint64(0x9E3779B97F4A7C15)
        j += 1
    if column:
        line = state[5]
        h = np.uint64(0xC2B2AE3D27D4EB4F)
        record = state[RECORD_LENGTH]
        carry_h = np.uint64(0x2127599BF4325C37)
        if state[4] >= 0 and 0 < line <= LINE_ABOVE_MAX and col <= LINE_ABOVE_MAX \
                and not 0 < 2 * record <= line:
            above = pos - line
            for d in range(-1, 2):
                p = above + d
                h = hash_byte(h, data[p] if visible(p, pos, view) else 256)
            # how much of this line so far matches the line above: a column of numbers
            # that change slowly shares a prefix with the row above
            run = shared_before(data, above, pos, view, min(col, 16))
            h += np.uint64(col == 0) + np.uint64(2 * min(run, 3) + 8 * (run == col))
            a = data[above] if visible(above, pos, view) else 256
            # A digit above, and whether the digits after it all read 9: a counter's digit is the
            # one above, plus one where they carry. The three bytes above split each carry 10
            # ways: a CSV of row numbers, words and numbers paid 1.0-1.25 bits a row for its row
            # numbers, now 0.03 (`docs/count-family.md`, "The field of the line").
            if _digit(a):
                carry, p = 1, above + 1
                # at most 20 digits after it (a 64-bit counter has 20): a long line of nines
                # is not read to its end for every byte below it
                while p < min(pos, above + 21) and visible(p, pos, view) and _digit(data[p]):
                    if data[p] != 57:
                        carry = 0
                        break
                    p += 1
                carry_h = hash_byte(hash_byte(carry_h, a), carry + 2 * (run == col))
        elif record > 0 and state[RECORD_BY_BYTE]:  # a field: its column, the byte above
            c = data[pos - record] if visible(pos - record, pos, view) else 256
            h = hash_byte(h, c) + np.uint64(pos % record)
        elif record > 0:  # records counted from the start
            h = record_above(data, pos, view, record)
        out[j] = h
        out[j + 1] = carry_h
        j += 2
    if sparse:
        for skip in range(SPARSE_CONTEXTS):
            h = np.uint64(0xA0761D6478BD642F) + np.uint64(skip)
            for d in range(2):
                back = SPARSE_BACK[skip, d]
                if back == 0:  # the position in a 4-byte word (aligned records, instructions)
                    c = pos & 3
                else:
                    p = pos - back
                    c = data[p] if visible(p, pos, view) else 256
                h = hash_byte(h, c)
            out[j] = h
            j += 1
    return match_hash


@kernel(inline="always")
def _prefetch_buckets(tables, hashes, byte, bucket_mask):
    """Ask the CPU for every bucket, and its pair, that coding `byte` will look up: one per
    context for each nibble, all at once, so that their loads from memory overlap: looked up
    one after another, each waited for memory. Best of four passes, interleaved with the code
    before in one process: tables sized for 100 MiB (64 MiB a context), `cm-order24` 1.23-1.34x
    as fast and `cm-order6` 1.18x; sized for 1 MiB, the four largest sizes 1.14-1.44x; the two
    smallest, within noise. Without the pairs, the largest sizes gained nothing."""
    for i in range(len(hashes)):
        for c0 in (1, 16 + (byte >> 4)):  # the partial byte each nibble's bucket is chosen by
            b, _ = _bucket(hashes[i], c0, bucket_mask)
            prefetch(tables, i, b)
            prefetch(tables, i, b ^ 16)


@kernel(inline="always")
def _map_row(c1, c0):
    """The order-1 probability map's row for the partial byte `c0` after the byte `c1` (the
    order-0 map's rows are the first 256; a byte's rows lie together)."""
    return 256 + c1 * 256 + c0


@kernel(inline="always")
def _prefetch_map_rows(apm, c1, byte):
    """Ask the CPU for the rows of the order-1 probability map that coding `byte` after `c1`
    reads, one per bit (each of 33 cells spans three cache lines). The map's rows for one
    last byte span 33 KiB, 8.6 MiB in all: on random bytes each bit's row missed the cache,
    and `cm-order6` spent a quarter of its time waiting for them."""
    c0 = 1
    for bit_index in range(8):
        row = _map_row(c1, c0)
        prefetch(apm, row, 0)
        prefetch(apm, row, 16)
        prefetch(apm, row, 32)
        c0 = c0 * 2 + ((byte >> (7 - bit_index)) & 1)


@kernel(inline="always")
def _bucket(context_hash, c0, bucket_mask):
    """The first counter of the bucket for a context and the partial byte `c0` (1, or 16 plus
    the high nibble), and the check that tells its context from others hashed there."""
    hb = (context_hash ^ np.uint64(c0)) * np.uint64(0x2545F4914F6CDD1D)
    hb ^= hb >> np.uint64(29)
    check = np.uint32((hb >> np.uint64(40)) | np.uint64(1))
    return np.int64(hb & np.uint64(bucket_mask)) << 4, check


@kernel(nogil=True)
def _code(data, start, stop, view, learn, orders, word, column, sparse, match_min,
          long_repeats, tables, match_table, match_counters, weights, apm, records, deltas,
          delta_costs, state, stretch,
          rates, per_byte, keep_per_byte, log_at, log_old, logged):
    """Code data[start:stop], skipping held-out bytes outside the block being evaluated.

    Relearning (`ContextMixingModel.evaluate`) updates the counters and the match index, not
    the mixer and the maps. Evaluating or relearning (view[4] != LEARNING), every write to the
    tables, match index, counters and maps is logged in (log_at, log_old) from entry `logged`
    on, so that `_roll_back` can undo it (the mixer weights are saved whole by the caller).
    Returns (bits, bytes coded, entries logged)."""
    n_ctx = tables.shape[0]
    n_in = weights.shape[1]
    delta = n_in > n_ctx + 1  # the last input is the delta model's
    counts = deltas.reshape((-1, deltas.shape[3]))  # a row per stride, column and comparison
    rows = np.full(len(DELTA_STRIDES), -1, dtype=np.int64)
    above = np.zeros(len(DELTA_STRIDES), dtype=np.int64)
    cum = np.zeros(257)  # the open row's counts summed up to each difference
    n_orders = len(orders)
    bucket_mask = (tables.shape[1] >> 4) - 1
    match_mask = (len(match_table) >> long_repeats) - 1
    hashes = np.zeros(n_ctx, dtype=np.uint64)
    match_rows = match_table.reshape((len(match_table), 1))  # a 2-D view for `prefetch`
    base = np.zeros(n_ctx, dtype=np.int64)  # bucket offset per context; -1: unknown (frozen)
    x = np.zeros(n_in, dtype=np.float64)
    index = np.zeros(n_in, dtype=np.int64)
    total, coded = 0.0, 0
    long_hash, last = np.uint64(0), np.int64(-2)
    evaluating = view[4] != LEARNING
    tune = learn and view[4] != RELEARNING  # the mixer and the maps learn too
    n_tables = tables.shape[1]
    for pos in range(start, stop):
        if learn and held_out(pos, view) and not view[1] <= pos < view[1] + (1 << view[2]):
            # Not read, a held-out byte is assumed to go on the repeat and the lines: the
            # repeat's pointer steps over it, and a line as long as the last ends there. Else a
            # repeat was lost, and the first line after the held-out block took its length
            # from across it, so two lines had no column context: rows of a cellular automaton
            # that shift one cell a step, 150 wide, cost 0.017 bits/byte (lzma 0.013).
            if state[1] > 0:
                state[0] += 1
            if state[4] >= 0 and pos - state[4] == state[5]:
                state[4], state[FIELDS] = pos, -1
            continue
        # --- byte boundary: contexts and the match model look at the history ---
        ptr, length, recovering = state[0], state[1], state[6]
        # The repeat's next byte is one the model never saw (held out, or not yet learned
        # from): it goes on past it without a guess, and guesses again where it sees the bytes,
        # as long as before. Dropping it, a repeat of random bytes lost every held-out block
        # of its source and found itself again `match_min` bytes later, each byte of the
        # repeat costing 0.1 bits at 16 KiB (zstd: 0.01).
        unseen = length > 0 and not visible(ptr, pos, view)
        if recovering > 0 and not unseen:
            ptr = realign(data, pos, view, ptr)
        match_hash = _context_hashes(data, pos, view, orders, match_min, word,
                                     column, sparse, state, hashes)
        byte = np.int64(data[pos])
        c1 = np.int64(data[pos - 1]) if visible(pos - 1, pos, view) else 0
        _prefetch_buckets(tables, hashes, byte, bucket_mask)
        _prefetch_map_rows(apm, c1, byte)
        slot = index_slot(match_hash, match_mask)
        if (length < match_min or unseen) and pos >= match_min:  # none, recovering or unseen
            cand = match_table[slot]
            run = verified_run(data, cand, pos, view, match_min)
            if run > 0:
                ptr, length, recovering, unseen = cand, run, 0, False
        if pos >= match_min:
            if evaluating:
                logged = _remember(log_at, log_old, logged, LOG_MATCH, slot, match_table[slot])
            match_table[slot] = pos
        if long_repeats:
            if pos != last + 1:  # the first byte, or one after held-out bytes skipped
                long_hash = long_match_hash(data, pos, view)
            long_slot = match_mask + 1 + index_slot(long_hash, match_mask)
            if (length < LONG_MATCH or unseen) and pos % LONG_MATCH_EVERY == 0:
                cand = match_table[long_slot]
                run = verified_run(data, cand, pos, view, LONG_MATCH) if cand != ptr else 0
                if run > 0 and (run > length or unseen):
                    ptr, length, recovering, unseen = cand, run, 0, False
            if pos >= LONG_MATCH:
                if evaluating:
                    logged = _remember(log_at, log_old, logged, LOG_MATCH, long_slot,
                                       match_table[long_slot])
                match_table[long_slot] = pos
        if pos + 1 < stop:  # the next byte's slots in the match index, a byte ahead
            prefetch(match_rows, index_slot(recent_hash(data, pos + 1, view, match_min),
                                             match_mask), 0)
            if long_repeats:
                prefetch(match_rows, match_mask + 1 + index_slot(long_step(long_hash, byte),
                                                                  match_mask), 0)
        guess = length > 0 and not unseen
        expected = np.int64(data[ptr]) if guess else -1
        # once a bit contradicts the repeat, the byte after the expected one (a deleted byte)
        skipped = np.int64(data[ptr + 1]) if guess and visible(ptr + 1, pos, view) else -1
        # just after a change, the byte before the expected one (a byte was inserted)
        before = np.int64(data[ptr - 1]) if guess and recovering == MATCH_RECOVER_BYTES - 1 \
            and visible(ptr - 1, pos, view) else -1
        if length < 16:
            len_bucket = length
        else:
            len_bucket = min(31, 12 + np.int64(math.log2(length)))
        opened = -1
        if delta:
            delta_rows(data, pos, view, state[RECORD_LENGTH], rows, above)
            opened = delta_open(delta_costs)
            if opened >= 0 and rows[opened] >= 0:
                cumulate(counts, rows[opened], cum)
            else:
                opened = -1
        c0, nib, chance, s3 = 1, 1, 1.0, CONFIDENCE_SETS_AT
        for bit_index in range(8):
            if bit_index == 0 or bit_index == 4:  # a new bucket of 15 counters per context
                nib = 1
                for i in range(n_ctx):
                    b, check = _bucket(hashes[i], c0, bucket_mask)
                    if tables[i, b] != check:
                        other = b ^ 16  # the bucket's pair: a context lives in either
                        if tables[i, other] == check:
                            b = other
                        elif learn:
                            # replace the less-seen of the two (an empty one has seen nothing)
                            if tables[i, other + 1] & np.uint32(1023) < \
                                    tables[i, b + 1] & np.uint32(1023):
                                b = other
                            for k in range(16):
                                if evaluating:
                                    logged = _remember(log_at, log_old, logged, LOG_TABLES,
                                                       i * n_tables + b + k, tables[i, b + k])
                                tables[i, b + k] = np.uint32(1 << 31)
                            tables[i, b] = check
                        else:
                            b = -1
                    base[i] = b
                s3 = CONFIDENCE_SETS_AT + _longest_seen(tables, base, n_orders)
            bit = (byte >> (7 - bit_index)) & 1
            for i in range(n_ctx):
                if base[i] < 0:
                    x[i], index[i] = 0.0, -1
                else:
                    index[i] = base[i] + nib
                    x[i] = stretch[tables[i, index[i]] >> 20]
            predicted, bucket = -1, 0
            if expected >= 0 and ((expected + 256) >> (8 - bit_index)) == c0:
                predicted, bucket = (expected >> (7 - bit_index)) & 1, len_bucket
            elif skipped >= 0 and ((skipped + 256) >> (8 - bit_index)) == c0:
                predicted = (skipped >> (7 - bit_index)) & 1  # bucket 0: no length predicts
            elif before >= 0 and ((before + 256) >> (8 - bit_index)) == c0:
                predicted, bucket = (before >> (7 - bit_index)) & 1, MATCH_BUCKETS
            if predicted >= 0:
                index[n_ctx] = bucket * 2 + predicted
                x[n_ctx] = stretch[match_counters[index[n_ctx]] >> 20]
            else:
                index[n_ctx], x[n_ctx] = -1, 0.0
            if delta:  # no counter of its own: index -1
                index[n_ctx + 1] = -1
                x[n_ctx + 1] = 0.0 if opened < 0 else delta_stretch(
                    cum, above[opened], c0, bit_index, stretch)
            group = min(bucket, 7) if predicted >= 0 and bucket < MATCH_BUCKETS else 0
            s1, s2 = c0, MATCH_SETS_AT + group * 256 + c1
            s4 = MATCH_ONLY_SETS_AT + group * 8 + min(max(state[FIELDS] + 1, 0), 7)
            dot1, dot2, dot3, dot4 = 0.0, 0.0, 0.0, 0.0
            for i in range(n_in):
                dot1 += weights[s1, i] * x[i]
                dot2 += weights[s2, i] * x[i]
                dot3 += weights[s3, i] * x[i]
                dot4 += weights[s4, i] * x[i]
            mixed = (dot1 + dot2 + dot3 + dot4) / 4.0
            pm = _squash(mixed)
            # adaptive probability maps: order 0 and order 2, interpolated over stretch(p)
            t = min(max((mixed + 8.0) * 2.0, 0.0), 31.999)
            lo = np.int64(t)
            frac = t - lo
            a1, a2 = c0, _map_row(c1, c0)
            q1 = apm[a1, lo] * (1 - frac) + apm[a1, lo + 1] * frac
            q2 = apm[a2, lo] * (1 - frac) + apm[a2, lo + 1] * frac
            s1q = stretch[min(np.int64(q1 * 4096.0), 4095)]  # maps hold (0, 1)
            s2q = stretch[min(np.int64(q2 * 4096.0), 4095)]
            p = _squash(weights[BLEND_SET, 0] * mixed + weights[BLEND_SET, 1] * s1q
                        + weights[BLEND_SET, 2] * s2q)
            p = min(max(p, P_CLIP), 1.0 - P_CLIP)
            chance *= p if bit else 1.0 - p  # one logarithm per byte, not per bit
            if tune:
                rate = max(MIXER_RATE, MIXER_RATE_START / (1.0 + state[MIXER_UPDATES] / 4096.0))
                state[MIXER_UPDATES] += 1
                err = (bit - pm) * rate  # the weight sets serve one sum: one error
                for i in range(n_in):
                    weights[s1, i] += err * x[i]
                    weights[s2, i] += err * x[i]
                    weights[s3, i] += err * x[i]
                    weights[s4, i] += err * x[i]
                blend_err = (bit - p) * BLEND_RATE
                weights[BLEND_SET, 0] += blend_err * mixed
                weights[BLEND_SET, 1] += blend_err * s1q
                weights[BLEND_SET, 2] += blend_err * s2q
                near = lo + (frac > 0.5)
                if evaluating:
                    logged = _remember(log_at, log_old, logged, LOG_APM, a1 * 33 + near,
                                       apm[a1, near])
                    logged = _remember(log_at, log_old, logged, LOG_APM, a2 * 33 + near,
                                       apm[a2, near])
                apm[a1, near] += np.float32((bit - apm[a1, near]) * APM_RATE)
                apm[a2, near] += np.float32((bit - apm[a2, near]) * APM_RATE)
            if learn:
                for i in range(n_in):
                    k = index[i]
                    if k < 0:
                        continue
                    e = tables[i, k] if i < n_ctx else match_counters[k]
                    n = np.int64(e & np.uint32(1023))
                    prob = np.int64(e >> np.uint32(10))
                    prob += ((np.int64(bit) << 22) - prob) * rates[n] >> 16
                    prob = min(max(prob, 1), (1 << 22) - 1)
                    if evaluating:
                        if i < n_ctx:
                            logged = _remember(log_at, log_old, logged, LOG_TABLES,
                                               i * n_tables + k, tables[i, k])
                        else:
                            logged = _remember(log_at, log_old, logged, LOG_COUNTERS, k,
                                               match_counters[k])
                    e = np.uint32((prob << 10) | min(n + 1, 1023))
                    if i < n_ctx:
                        tables[i, k] = e
                    else:
                        match_counters[k] = e
            c0 = c0 * 2 + bit
            nib = nib * 2 + bit
        bits = -math.log2(chance)
        total += bits
        coded += 1
        if keep_per_byte:
            per_byte[pos - start] = bits
        if delta and learn and view[4] == LEARNING:
            learn_deltas(counts, rows, above, byte, delta_costs)
        # --- after the byte: follow the repeat, update word and line state ---
        if unseen:
            ptr += 1
        elif length > 0:
            ptr += 1
            if expected == byte:
                length += 1
            elif length >= match_min:  # a repeat met a change: recover it
                length, recovering = 1, MATCH_RECOVER_BYTES
            else:
                length = 1 if recovering > 0 else 0
            if recovering > 0:  # recovered once `match_min` bytes match again; else given up
                recovering = 0 if length >= match_min else recovering - 1
                if recovering == 0 and length < match_min:
                    length = 0
        state[0], state[1], state[6] = ptr, length, recovering
        if long_repeats:
            long_hash = long_step(long_hash, byte)
            last = pos
        if _alnum(byte):
            state[2] = np.int64((np.uint64(state[2]) + np.uint64(byte + 1)) *
                                np.uint64(0x100000001B3) & np.uint64(0x7FFFFFFFFFFFFFFF))
        elif state[2] != 0:
            state[3], state[2] = state[2], 0
        if byte == 10:
            if state[4] >= 0:
                state[5] = pos - state[4]
            state[4], state[FIELDS] = pos, -1
        elif _control(byte):
            state[FIELDS] = -2
        elif state[FIELDS] >= 0 or (state[FIELDS] == -1 and not _indent(byte)):
            state[FIELDS] = max(state[FIELDS], 0) + np.int64(_separator(byte))
        if column and view[4] == LEARNING and sampled(pos, state[RECORD_SAMPLES]):
            learn_record(data, pos, view, records)
            state[RECORD_SAMPLES] += 1
            if state[RECORD_SAMPLES] % RECORD_DECIDE == 0:
                state[RECORD_LENGTH], state[RECORD_BY_BYTE] = record_length(records)
    return total, coded, logged


@kernel(nogil=True)
def _recall_lines(data, begin, view, state):
    """Set the line state (last newline, line length, field) from the visible bytes before
    `begin`, so a held-out block after bytes the model saw starts with its column and field
    contexts."""
    newlines, p = 0, begin - 1
    separators, indent, content, control = 0, 0, False, False  # this line's, read backwards
    while p >= 0 and begin - p <= 8192 and newlines < 2 and visible(p, begin, view):
        c = data[p]
        if c == 10:
            if newlines == 0:
                state[4] = p
            else:
                state[5] = state[4] - p
            newlines += 1
        elif newlines == 0:
            indent = indent + 1 if _indent(c) else 0
            content = content or not _indent(c)
            separators += np.int64(_separator(c))
            control = control or _control(c)
        p -= 1
    state[FIELDS] = -2 if control else separators - indent if content else -1


def _log_size(block: int, warm: int, contexts: int) -> int:
    """Most writes an adaptive pass over one block and its warm-up can log: per byte two
    bucket resets of 16 counters per context, two match-index writes, and per bit two map
    cells and one counter per mixer input."""
    return (block + warm) * (32 * contexts + 2 + 8 * (2 + contexts + 1))


@kernel(nogil=True)
def _evaluate(data, seen, view, starts, repeats, warm, orders, word, column, sparse, match_min,
              long_repeats, tables, match_table, match_counters, weights, apm, records, deltas,
              delta_costs, state,
              stretch, rates, log_at, log_old):
    """Bits and bytes of each held-out block (first bytes `starts`, in order) under the model
    frozen after `seen` bytes, coded two ways: frozen, and adaptively
    (`ContextMixingModel.evaluate`).

    A block starts on the repeat the online pass was following as it reached it (`repeats`:
    pointer, length, recovering; length 0 where the pass has not reached it), unless
    relearning the bytes before it found a longer one. That repeat comes from the bytes before
    the block alone. Looked up afresh, from the index of the whole file, a repeat lands on the
    latest copy of the last 8 bytes: rows of a cellular automaton that shift a cell a step and
    repeat every 10,816 bytes were matched at a wrong phase in each block, which missed at every
    row's wrap (10 bits each), where the online pass had locked onto the period once.

    The blocks are one sequential code of the held-out slice: once a block is coded, its
    bytes join the match model's index until the evaluation ends, so a later block finds
    repeats in it. Each block was coded alone, and a repeat whose copies were both held out
    was paid twice: random bytes written twice scored 4.26 bits/byte (zstd: 4.00), with
    S = -3.7, where the held-out rule of the time held out the same bytes of both copies."""
    block = 1 << view[2]
    frozen = np.zeros(len(starts))
    adaptive = np.zeros(len(starts))
    count = np.zeros(len(starts), dtype=np.int64)
    unused = np.zeros(1)
    indexed = np.zeros(2 * block, dtype=np.int64)  # match-index slots one block's bytes wrote
    positions = np.zeros(2 * block, dtype=np.int64)  # and the positions written there
    kept_at = np.zeros(2 * len(starts) * block, dtype=np.int64)  # index writes kept to the end
    kept_old = np.zeros(2 * len(starts) * block)
    kept, no = np.int64(0), np.bool_(False)  # not literals (see holdout.LEARNING)
    for b in range(len(starts)):
        begin, end = starts[b], min(starts[b] + block, len(data))
        frame, relearn = block_views(view, begin)
        for adapt in (False, True):
            local = state.copy()
            local[:STATE_FIELDS] = 0  # no repeat, word or line yet (-1: no newline seen)
            local[4] = -1
            saved_weights = weights.copy() if adapt else weights
            logged = np.int64(0)
            warm_start, warm_stop = max(0, begin - warm), min(begin, seen)
            if adapt and warm_start < warm_stop:
                _recall_lines(data, warm_start, relearn, local)
                _, _, logged = _code(
                    data, warm_start, warm_stop, relearn, adapt, orders, word, column, sparse,
                    match_min, long_repeats, tables, match_table, match_counters, weights, apm,
                    records, deltas, delta_costs, local, stretch, rates, unused, no, log_at,
                    log_old, logged)
            else:
                _recall_lines(data, begin, frame, local)
            if repeats[b, 1] > local[1]:
                local[0], local[1], local[6] = repeats[b, 0], repeats[b, 1], repeats[b, 2]
            bits, count[b], logged = _code(
                data, begin, end, frame, adapt, orders, word, column, sparse, match_min,
                long_repeats, tables, match_table, match_counters, weights, apm, records, deltas,
                delta_costs, local, stretch, rates, unused, no, log_at, log_old, logged)
            if not adapt:  # learning nothing, the frozen code logged only its index writes
                slots = logged
                for n in range(slots):
                    indexed[n] = log_at[n] & LOG_WHERE
                    positions[n] = match_table[indexed[n]]
            _roll_back(log_at, log_old, logged, tables, match_table, match_counters, apm)
            if adapt:
                weights[:] = saved_weights
                adaptive[b] = bits
            else:
                frozen[b] = bits
        for n in range(slots):
            slot = indexed[n]
            kept = _remember(kept_at, kept_old, kept, LOG_MATCH, slot, match_table[slot])
            match_table[slot] = positions[n]
    _roll_back(kept_at, kept_old, kept, tables, match_table, match_counters, apm)
    return frozen, adaptive, count
