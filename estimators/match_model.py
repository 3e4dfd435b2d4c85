"""The match model's search for repeats: where the longest earlier repeat of the bytes before
a position lies, and how a repeat survives a changed, inserted or deleted byte. The kernel that
codes (`context_mixing._code`) inlines these and predicts each bit from the repeat's next byte.

Its index of earlier positions is keyed by the running hash of the last `match_min` bytes, the
hash the byte contexts take on the same walk back (`hash_byte`).
"""
from __future__ import annotations

import numpy as np

from estimators.holdout import mix64, visible
from estimators.kernels import kernel

MATCH_MAX_VERIFY = 64  # bytes compared backwards when a repeat is first found
# A repeat survives a changed, inserted or deleted byte: the match model goes on predicting
# from whichever of the next three alignments matches the bytes since, until `match_min` of
# them match again (lengths below it count those) or this many bytes have passed. Dropped at
# the change, a repeat was found again only `match_min` bytes later, coded without it: in a
# copy of 64 KiB of random bytes with 1% of them edited, an edit cost 39-78 bits (lzma: 28);
# now a change 18-19. Once a bit contradicts the repeat, the byte after the one expected
# predicts the rest (`skipped`: a deletion 13-15 bits, 19-21 without), and just after a change
# the byte before it (`before`: an insertion 24-25, 28-30 without).
MATCH_RECOVER_BYTES = 16
# A second index of earlier positions, by a hash of the last 32 bytes, finds long repeats
# where the latest position sharing `match_min` bytes is a short, chance one: over a small
# alphabet every few bytes recur all the time (5,000 random "0"s and "1"s repeated to 256 KiB
# cost 0.97 bits/byte, zstd 0.021; now 0.021). It is searched every 8th byte outside a repeat
# that long: a repeat is found at most 8 bytes late, for an eighth of the lookups.
LONG_MATCH = 32
LONG_MATCH_EVERY = 8
# match counters come in pairs (by the bit predicted), bucket 0 for the byte after the one
# expected, 1-31 by repeat length, and MATCH_BUCKETS for the byte before it
MATCH_BUCKETS = 32
RUNNING_HASH_SEED = np.uint64(0x9E3779B97F4A7C15)


@kernel(inline="always")
def shared_before(data, cand, pos, view, limit):
    """How many bytes (at most `limit`) just before `cand` equal those just before `pos`,
    all of them visible."""
    run = 0
    while run < limit and cand - 1 - run >= 0 and visible(cand - 1 - run, pos, view) and \
            visible(pos - 1 - run, pos, view) and data[cand - 1 - run] == data[pos - 1 - run]:
        run += 1
    return run


@kernel(inline="always")
def verified_run(data, cand, pos, view, least):
    """How many bytes before the indexed position `cand` match those before `pos` (up to
    MATCH_MAX_VERIFY, all visible), when at least `least` do and `cand` itself may be read;
    else 0: no repeat there."""
    if cand <= 0 or not visible(cand - 1, pos, view):
        return 0
    run = shared_before(data, cand, pos, view, MATCH_MAX_VERIFY)
    return run if run >= least and visible(cand, pos, view) else 0


@kernel(inline="always")
def realign(data, pos, view, ptr):
    """Of ptr - 1, ptr and ptr + 1 (a byte inserted, changed or deleted), the repeat whose
    bytes before it match those before `pos` longest; ptr on a tie. Evaluating, the repeat
    may lie ahead of `pos`, in training bytes after the block: once only those behind it were
    tried, and a held-out block whose copy ahead had lost bytes lost its repeat at each one
    (eight bytes, about 80 bits)."""
    best, longest = ptr, -1
    for cand in (ptr, ptr - 1, ptr + 1):
        if not visible(cand, pos, view):
            continue
        run = shared_before(data, cand, pos, view, 8)
        if run > longest:
            best, longest = cand, run
    return best


@kernel(inline="always")
def hash_byte(h, c):
    """One step of the running hash over the bytes before a position (c: the byte, or 0 or
    256 for one not visible)."""
    return (h + np.uint64(c + 1)) * np.uint64(0x100000001B3)


@kernel(inline="always")
def recent_hash(data, pos, view, n):
    """The running hash of the `n` bytes before pos, as `context_mixing._context_hashes` walks
    them: for `match_min` bytes, the key of the match index."""
    h = RUNNING_HASH_SEED
    for k in range(1, n + 1):
        p = pos - k
        h = hash_byte(h, data[p] if visible(p, pos, view) else 0)
    return h


@kernel(inline="always")
def index_slot(key, match_mask):
    """The match index's slot for a running hash of the bytes before a position (the long
    repeats' index is the upper half: its slots are match_mask + 1 further)."""
    return np.int64(mix64(key) & np.uint64(match_mask))


@kernel(inline="always")
def long_step(h, c):
    """The hash of the last LONG_MATCH bytes (`long_match_hash`) after one more byte `c`."""
    return (h << np.uint64(2)) + np.uint64(c + 1)


@kernel(inline="always")
def long_match_hash(data, pos, view):
    """A hash of the LONG_MATCH bytes before pos (those not visible as 0), two bits a byte: a
    byte shifts out after LONG_MATCH more, so a pass updates it byte by byte (`long_step`)."""
    h = np.uint64(0)
    for k in range(LONG_MATCH, 0, -1):
        c = data[pos - k] if visible(pos - k, pos, view) else 0
        h = long_step(h, c)
    return h
