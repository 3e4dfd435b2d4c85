"""The record length of rows without newlines, which the context-mixing sizes with a column
context find from the data (`estimators/context_mixing.py`).

Rows without newlines (cells of a cellular automaton written as bytes, fixed-width records):
the record length is the distance d whose three bytes one record up (`record_cells`) best
predict the next byte. At sampled bytes learned (picked by a hash of the position: every
64th byte of rows 64 wide is a row's first), each d in [RECORD_MIN, RECORD_MAX] guesses the
byte as the one that last followed the same three bytes d back (a table of RECORD_SLOTS per
d) and counts its hits. Every RECORD_DECIDE samples the d hitting most becomes the record
length if it misses at most 1 - RECORD_MARGIN as often as the mean over all d (each guessed
RECORD_TRIES times at least). Single bytes above do not show it: rule 90 (a cell is the XOR
of two above it) leaves each independent of the cell. Without it, rule-30 rows of 0/1 bytes
64 wide cost 1.00 bits/byte, where lzma, which codes a literal by the byte at its last match
distance, paid 0.92; with it 0.017. Rows that shift a cell a step (rule 14) are predicted by
the bytes d-1, d and d+1 back alike, and only a row's first and last cell tell the width:
taking bytes d+1, d and d-1 back, without the wrap round, and asking for a margin of 0.25
over the mean hit rate, it found no width and cost 0.026 (zstd 0.006); now 0.0075.

Sampling and guessing run only while a pass learns online (`learn_record`), and every
RECORD_DECIDE samples the model takes the length they show (`record_length`).
"""
from __future__ import annotations

import math

import numpy as np

from estimators.holdout import held_out, visible
from estimators.kernels import kernel

RECORD_MIN, RECORD_MAX, RECORD_SLOTS = 8, 1024, 256
# One byte in 2**RECORD_SAMPLE_BITS is sampled, after RECORD_EARLY samples one in
# 2**RECORD_LATER_BITS: a sample reads a table row per distance, and one in 64 throughout
# slowed the sizes with a column context by 30% (one in 256 throughout: rule 30 above cost
# 0.050 bits/byte, not 0.017, found later).
RECORD_SAMPLE_BITS, RECORD_EARLY, RECORD_LATER_BITS = 6, 1024, 9
RECORD_DECIDE, RECORD_TRIES, RECORD_MARGIN = 16, 32, 0.5
RECORD_HALVE = 4096  # guesses after which a distance's counts halve: the choice can change
# Where three bytes above tell no record length, the byte above alone may, guessed two ways:
# the byte that last followed it that far back (rows of a cellular automaton packed 8 cells
# to a byte, whose 2**24 triples rarely recur: rule 106, 16 bytes a row, hit 0.31 at 16 and
# at most 0.12 elsewhere), then the byte above itself (binary records of counters and floats,
# where one byte above is followed by different bytes in different fields: 16-byte records of
# an index, a timestamp, a float drawn at random and a constant match 0.64 at 16). Such a
# length gives the column context of the byte above and the column. A length is also found
# where it hits RECORD_LIFT times as often as the mean distance, and at least RECORD_LEAST of
# the time (rule 106 above: 30 times; Python source, machine code and Markov chains at most
# 1.5 times, JSON lines 3.5, which at 2.5 lost their line context to 8 bytes and cost 16% more).
# Multiples of a record length hit about as often: a longer one must do better by RECORD_TIE.
# Lines give the column context, unless a record length that fits twice into the last line was
# found: a binary file holds stray newline bytes, while lines of numbers 6 bytes long repeat at
# 12 bytes and more (RECORD_MIN is 8), and JSON lines of about the same length at about it.
RECORD_TIE, RECORD_LIFT, RECORD_LEAST = 0.02, 8.0, 0.1
# The records table's columns, a row per distance: RECORD_SLOTS bytes that last followed each
# triple, then hits of those, guesses made, hits of the byte above itself, hits of the byte that
# last followed the byte above, and those bytes (one slot per byte above).
TRIPLE_HITS, RECORD_GUESSES, ABOVE_HITS, FOLLOWER_HITS, FOLLOWERS = range(
    RECORD_SLOTS, RECORD_SLOTS + 5)
RECORD_COLUMNS = FOLLOWERS + 256
TABLE_SHAPE, TABLE_DTYPE = (RECORD_MAX + 1, RECORD_COLUMNS), np.uint16  # a row per distance
TABLE_BYTES = math.prod(TABLE_SHAPE) * np.dtype(TABLE_DTYPE).itemsize


def record_table(column: bool) -> np.ndarray:
    """The guesses' table of a size (columns named after RECORD_TIE), or none without a column
    context."""
    return np.zeros(TABLE_SHAPE if column else (1, 1), dtype=TABLE_DTYPE)


def record_guesses(tokens: int) -> float:
    """Guesses of the record length (`learn_record`) a pass over `tokens` bytes makes, by the
    expected share of bytes sampled."""
    early = RECORD_EARLY << RECORD_SAMPLE_BITS  # bytes until the sampling thins
    samples = min(tokens, early) / (1 << RECORD_SAMPLE_BITS) \
        + max(0, tokens - early) / (1 << RECORD_LATER_BITS)
    return samples * (RECORD_MAX - RECORD_MIN + 1)


@kernel(inline="always")
def record_cells(pos, width):
    """Where the three bytes around `pos`'s column lie in the record above (records of `width`
    bytes counted from the start), and whether `pos` is a record's first byte (1), last (2)
    or neither (0). The record wraps round, as the rows of a cellular automaton on a ring do:
    its first cell's left neighbour is its last. (Taking bytes width+1, width and width-1
    back, each row's first and last cell had the wrong neighbours: rule 30 as 0/1 bytes 64
    wide cost 0.094 bits/byte, 0.017 since.)"""
    col = pos % width
    top = pos - col - width
    left = top + (col - 1 if col > 0 else width - 1)
    right = top + (col + 1 if col < width - 1 else 0)
    return left, top + col, right, (col == 0) + 2 * (col == width - 1)


@kernel(inline="always")
def record_above(data, pos, view, width):
    """A hash of the three bytes around `pos`'s column in the record above and of which edge
    of its record `pos` is (`record_cells`)."""
    left, above, right, edge = record_cells(pos, width)
    h = np.uint64(0x27D4EB2F165667C5)
    for p in (left, above, right):
        c = data[p] if visible(p, pos, view) else 256
        h = (h + np.uint64(c + 1)) * np.uint64(0x100000001B3)
    return h + np.uint64(edge)


@kernel(inline="always")
def sampled(pos, samples) -> bool:
    """Whether the byte at `pos` is a sample, `samples` having been taken before."""
    rarity = RECORD_SAMPLE_BITS if samples < RECORD_EARLY else RECORD_LATER_BITS
    return (np.uint64(pos) * np.uint64(0x9E3779B97F4A7C15) >> np.uint64(64 - rarity)) == 0


@kernel(nogil=True)
def learn_record(data, pos, view, records):
    """One sample of the record length (module docstring), learning the byte at `pos` from
    the training bytes before it; only online, so an evaluation has nothing to roll back."""
    shift, byte = view[2], np.int64(data[pos]) + 1
    low = max(0, pos - 2 * RECORD_MAX)  # the last byte of a record two records up
    first = low >> shift
    seen = np.empty(((pos - 1) >> shift) - first + 1, dtype=np.bool_)  # blocks not held out
    for k in range(len(seen)):
        seen[k] = not held_out((first + k) << shift, view)
    for d in range(RECORD_MIN, RECORD_MAX + 1):
        left, above, right, edge = record_cells(pos, d)
        if min(left, right) < low:
            break
        if not (seen[(left >> shift) - first] and seen[(above >> shift) - first]
                and seen[(right >> shift) - first]):
            continue
        slot = (((np.int64(data[left]) * 0x9E3779B1 + np.int64(data[above])) * 0x85EBCA6B
                 + np.int64(data[right])) * 4 + edge) & (RECORD_SLOTS - 1)
        records[d, RECORD_GUESSES] += 1
        if records[d, slot] == byte:
            records[d, TRIPLE_HITS] += 1
        records[d, slot] = byte
        if np.int64(data[above]) + 1 == byte:
            records[d, ABOVE_HITS] += 1
        slot = FOLLOWERS + np.int64(data[above])
        if records[d, slot] == byte:
            records[d, FOLLOWER_HITS] += 1
        records[d, slot] = byte
        if records[d, RECORD_GUESSES] >= RECORD_HALVE:
            for k in range(TRIPLE_HITS, FOLLOWERS):
                records[d, k] //= 2


@kernel(nogil=True)
def record_length(records):
    """The record length the samples so far show (0: none), and whether single bytes above
    showed it, where the three around the column did not."""
    length = _best_distance(records, np.int64(TRIPLE_HITS), 0.0)
    by_byte = length == 0
    for hits_at in (np.int64(FOLLOWER_HITS), np.int64(ABOVE_HITS)):
        length = length or _best_distance(records, hits_at, RECORD_TIE)
    return length, by_byte


@kernel(nogil=True)
def _best_distance(records, hits_at, tie):
    """The distance whose guesses (hits in column `hits_at` of `records`) hit most, if it
    misses at most 1 - RECORD_MARGIN as often as the mean distance, or hits RECORD_LIFT times
    as often and at least RECORD_LEAST of the time; else 0. A longer distance must beat a
    shorter one by more than `tie` (the multiples of a record length tie)."""
    best, best_rate, total, counted = 0, -1.0, 0.0, 0
    for d in range(RECORD_MIN, RECORD_MAX + 1):
        tries = records[d, RECORD_GUESSES]
        if tries >= RECORD_TRIES:
            rate = records[d, hits_at] / tries
            total, counted = total + rate, counted + 1
            if rate > best_rate + tie:
                best, best_rate = d, rate
    mean = total / max(counted, 1)
    found = counted > 0 and (1.0 - best_rate <= (1.0 - RECORD_MARGIN) * (1.0 - mean)
                             or best_rate >= max(RECORD_LIFT * mean, RECORD_LEAST))
    return best if found else 0
