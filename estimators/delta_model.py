"""The delta model of integer data: a mixer input of `cm-order6` (`estimators/context_mixing.py`).

Integer data (counters, timestamps, samples): a byte is the byte one stride back plus a
difference whose distribution is the same whatever that byte is. Byte contexts learn it once
per value of the byte back, 256 times over: an int32 counter stepping 0-99 cost 2.04
bits/byte where its differences under lzma cost 1.88 (the rate is 1.66). The delta model
counts differences (x - a) mod 256, per stride, column and how the byte before compared with
its own one stride back (equal, below: a carry, above), and offers each bit the share of the
counts the bits known so far leave it: one more mixer input. Strides 2, 4 and 8 bytes, and
the record length where one of at most DELTA_MAX_STRIDE is found. The input stays silent (0,
the mixer unchanged) unless the best stride's recent code is below DELTA_GATE times that of
plain byte counts: text, Markov chains and random bytes code bit for bit as without it.
"""
from __future__ import annotations

import math

import numpy as np

from estimators.holdout import visible
from estimators.kernels import kernel

DELTA_STRIDES = np.array([2, 4, 8, 0], dtype=np.int64)  # 0: the record length
DELTA_MAX_STRIDE = 64
DELTA_PRIOR = 0.02  # added to every difference's count
DELTA_LIMIT = 4096.0  # a row's counts halve at this total: they follow drift
DELTA_DECAY = 1.0 - 1.0 / 1024  # the recent code lengths the gate compares
DELTA_GATE, DELTA_WARM = 0.8, 1024  # and the bytes it has seen before it may open
DELTA_ORDER0, DELTA_SEEN = len(DELTA_STRIDES), len(DELTA_STRIDES) + 1  # entries of the costs
DELTA_PLAIN_ROW = len(DELTA_STRIDES) * DELTA_MAX_STRIDE * 3  # plain byte counts, after the strides'


def delta_shape(delta: bool) -> tuple[int, ...]:
    """The delta model's counts: per stride, column and comparison (equal, below, above), 256
    differences and their total; then plain byte counts, for the gate."""
    return (len(DELTA_STRIDES) + 1, DELTA_MAX_STRIDE, 3, 257) if delta else (1, 1, 1, 1)


def delta_shape_bytes() -> int:
    return math.prod(delta_shape(True)) * 4 + (DELTA_SEEN + 1) * 8


# These are calls, not inlined into `context_mixing._code`: inlined, they left the sizes
# without the model 15-20% slower (cm-order4 on Python source, 925 -> 1,116 ns/byte).
@kernel()
def delta_rows(data, pos, view, record, rows, above):
    """For each stride of the delta model, the row of counts that predicts the byte at pos
    (stride, column, how the byte before compared with its own one stride back) and the byte
    one stride back; row -1 where its bytes are not visible or there is no such stride."""
    for k in range(len(DELTA_STRIDES)):
        d = DELTA_STRIDES[k] if DELTA_STRIDES[k] > 0 else record
        rows[k] = -1
        if d <= 0 or d > DELTA_MAX_STRIDE or pos - 1 - d < 0 or not (
                visible(pos - d, pos, view) and visible(pos - 1, pos, view)
                and visible(pos - 1 - d, pos, view)):
            continue
        before, back = data[pos - 1], data[pos - 1 - d]
        compared = 0 if before == back else (1 if before < back else 2)
        rows[k] = (k * DELTA_MAX_STRIDE + pos % d) * 3 + compared
        above[k] = data[pos - d]


@kernel()
def delta_open(delta_costs):
    """The stride whose recent code is shortest, where it beats plain byte counts' by
    DELTA_GATE; else -1 (the delta input stays silent)."""
    if delta_costs[DELTA_SEEN] < DELTA_WARM:
        return -1
    best = 0
    for k in range(1, len(DELTA_STRIDES)):
        if delta_costs[k] < delta_costs[best]:
            best = k
    return best if delta_costs[best] < DELTA_GATE * delta_costs[DELTA_ORDER0] else -1


@kernel()
def cumulate(counts, row, cum):
    """cum[j]: the row's counts (each with DELTA_PRIOR) of the differences below j."""
    total = 0.0
    for j in range(256):
        cum[j] = total
        total += counts[row, j] + DELTA_PRIOR
    cum[256] = total


@kernel()
def _cyclic_mass(cum, first, n):
    """Counts of the n differences from `first` on, round past 255."""
    end = first + n
    if end <= 256:
        return cum[end] - cum[first]
    return cum[256] - cum[first] + cum[end - 256]


@kernel()
def delta_stretch(cum, a, c0, bit_index, stretch):
    """The delta model's stretched probability that the next bit is 1: of the bytes the known
    bits leave (those whose differences from `a` the counts give), the share whose bit is 1."""
    shift = 8 - bit_index
    low = (c0 - (1 << bit_index)) << shift  # the least byte the known bits leave
    half = 1 << (shift - 1)
    whole = _cyclic_mass(cum, (low - a) & 255, 2 * half)
    ones = _cyclic_mass(cum, (low + half - a) & 255, half)
    return stretch[min(np.int64(ones / whole * 4096), 4095)]


@kernel()
def _count(counts, row, value, costs, k):
    """Add the code length of `value` under the row to costs[k] (decayed), then count it."""
    share = (counts[row, value] + DELTA_PRIOR) / (counts[row, 256] + 256 * DELTA_PRIOR)
    costs[k] = costs[k] * DELTA_DECAY - math.log2(share)
    counts[row, value] += 1
    counts[row, 256] += 1
    if counts[row, 256] > DELTA_LIMIT:
        for j in range(257):
            counts[row, j] *= 0.5


@kernel()
def learn_deltas(counts, rows, above, byte, costs):
    """Count the byte's difference in each stride's row, and the byte itself in plain counts;
    the gate compares their recent code lengths."""
    for k in range(len(DELTA_STRIDES)):
        if rows[k] >= 0:
            _count(counts, rows[k], (byte - above[k]) & 255, costs, k)
    _count(counts, DELTA_PLAIN_ROW, byte, costs, DELTA_ORDER0)
    costs[DELTA_SEEN] += 1
