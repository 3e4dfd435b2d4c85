"""The held-out slice of the count family, and what a pass over bytes may read.

A count-family run learns from the training bytes in their natural order and measures its
final model on held-out blocks spread over the file (`Holdout`). Both numba kernels, whole
bytes (`estimators/blending.py`) and bitwise (`estimators/context_mixing.py`), see the slice
through a `view` tuple: `held_out` tells whether a byte is held out, `visible` whether a
byte may be read while coding another. Each held-out block is coded by a mixture of the
uniform, frozen, adaptive and online codes (`mixed_code`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from estimators.kernels import kernel

# What a pass over bytes is (the last field of `view`): learning online; coding held-out bytes
# with the final model; relearning, while evaluating, the training bytes before a held-out block;
# pairing: coding a held-out block as the online pass would have (`code_held_out`).
LEARNING, EVALUATING, RELEARNING, PAIRING = 0, 1, 2, 3
# A kernel that passes a constant to another kernel passes a numba literal, and numba compiles the
# callee once more for each literal: the count family's kernels took 160 s to compile, not 60.
# Kernels therefore pass np.int64(...) and np.bool_(...) values to each other.

SWITCH_SHARE = 0.05  # the share of weight each held-out block hands back to every code


def mixed_code(frozen: np.ndarray, adaptive: np.ndarray, count: np.ndarray,
               online: np.ndarray | None = None) -> np.ndarray:
    """Bits of each held-out block of `count` bytes under a mixture of the uniform (8 bits a
    byte), frozen and adaptive codes, and of the `online` one where given, the blocks in order
    (one code): block b costs
    -log2 sum_k w_k 2**-bits_k(b), with weights from the blocks before by fixed share
    (Herbster and Warmuth's tracking of the best expert): Bayes' rule, then `SWITCH_SHARE`
    spread evenly, so the code that is shortest can change along the file (random bytes,
    then a constant) at about log2(3 / SWITCH_SHARE) bits a switch, 0.07 a block otherwise.
    Where two codes are about as short (frozen and adaptive on data that does not drift) the
    mixture pays next to nothing for which; naming the shortest of each block, from how often
    each was shortest before, cost the 25 held-out blocks of 100 KB of random words 0.0047
    bits/byte, more than the final model's edge over the online code there: S came out below
    zero.

    `online` is each block as the pass, standing just before it, coded it (`PairedLoss`; NaN
    where the pass has not reached it, and the adaptive code stands in): the learner as it
    was there, made of the training bytes before the block alone, so the mixture is still a
    code of held-out bytes given the training ones. The final model follows the end of the
    file: where the statistics change along it (four order-2 chains in turn, 256 KiB) it coded
    the first three quarters' blocks worse than the pass had, and `cm-order6` read S = -0.084
    bits/byte; with the online code, S = 0.010 and H 2.011 -> 1.910."""
    codes = [8.0 * count, frozen, adaptive]
    if online is not None:
        codes.append(np.where(np.isnan(online), adaptive, online))
    codes = np.stack(codes)
    weights = np.full(len(codes), 1 / len(codes))
    bits = np.empty(codes.shape[1])
    for n in range(codes.shape[1]):
        shortest = codes[:, n].min()
        joint = weights * np.exp2(shortest - codes[:, n])  # in units of 2**-shortest
        bits[n] = shortest - math.log2(joint.sum())
        weights = (1 - SWITCH_SHARE) * joint / joint.sum() + SWITCH_SHARE / len(codes)
    return bits


@dataclass(frozen=True)
class Holdout:
    """The held-out slice: one in `every` blocks of 2**shift bytes, in place, so it is spread
    over the whole file and keeps the data's natural order inside each block.

    The blocks fall in strata of `every`, and a hash of its index picks the one each stratum
    holds out (`held_out`): as even a spread as a regular one, and for data that repeats at
    any distance a block's copy is held out too one time in `every`. Every 16th block held out
    the same bytes of every period of data that repeats each 16 blocks or a multiple (records,
    files of power-of-two sizes: 100 MiB of three files repeated measured H = 2.85 bits/byte
    where the online code paid 0.16); a golden-ratio rule, those of data repeating every 144
    blocks, or 233, or 89: random bytes written twice then split as S = 0, H = 4 bits/byte or
    S = 4, H = 0 by the length of the copy.

    `rotation` (below `every`) moves each stratum's pick to another of its blocks: the
    `every` rotations hold out every block once, so the final model's loss over the whole
    file, which one slice estimates, can be measured (`bench/bench_pairing.py --rotations`)."""

    shift: int
    every: int  # a power of two
    rotation: int = 0

    def __post_init__(self):
        if not 0 <= self.rotation < self.every:
            raise ValueError(f"rotation {self.rotation}: 0 to {self.every - 1}")

    @property
    def every_bits(self) -> int:
        return self.every.bit_length() - 1

    def view(self, seen: int, block: int, mode: int) -> tuple:
        """The kernels' view of the data (`visible`): training bytes before `seen` learned
        from, the held-out block that starts at `block` being coded, this slice's layout, and
        what the pass is (LEARNING, EVALUATING, RELEARNING, PAIRING), and the rotation."""
        return (seen, block, self.shift, self.every_bits, mode, self.rotation)

    @staticmethod
    def for_size(size: int, max_bytes: int = 1 << 20) -> "Holdout":
        """Blocks of up to 4 KiB, at least 256 in all (16 held out, for a stable mean and
        its error); 1/16 of the data held out, or less on large data so that at most about
        `max_bytes` are (every evaluation costs compute)."""
        shift = int(min(12, max(4, math.floor(math.log2(max(size, 16) / 256)))))
        every = 16
        while size // every > max_bytes:
            every *= 2
        return Holdout(shift, every)

    # Bytes just before a held-out block that an adaptive evaluation learns from again first
    # (the held-out ones among them skipped). 4 KiB: Python source at 128 KiB codes its
    # held-out blocks at 1.29 bits/byte after 4 KiB, 1.37 after 512 bytes, 1.32 after 16 KiB
    # (cm-order6).
    warm = 4096

    def blocks_held_out(self, blocks: np.ndarray) -> np.ndarray:
        """Whether each block index is held out (the rule of `held_out`, vectorised)."""
        blocks = np.asarray(blocks, dtype=np.uint64)
        bits = np.uint64(self.every_bits)
        with np.errstate(over="ignore"):  # the hash multiplies modulo 2**64
            pick = mix64((blocks >> bits) + np.uint64(1)) >> np.uint64(64 - self.every_bits)
        return (blocks & np.uint64(self.every - 1)) == pick ^ np.uint64(self.rotation)

    def _blocks(self, size: int) -> np.ndarray:
        """The index of every block of data of `size` bytes."""
        return np.arange((size + (1 << self.shift) - 1) >> self.shift)

    def block_starts(self, size: int) -> np.ndarray:
        """The first byte of each held-out block of data of `size` bytes."""
        blocks = self._blocks(size)
        return blocks[self.blocks_held_out(blocks)] << self.shift

    def strata(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """For each held-out block, the first byte and the end of the bytes it stands for: its
        stratum (the `every` blocks it is one of), the last block's running on to the end of
        the data where a short last stratum drew no block of its own."""
        stratum = self.every << self.shift
        first = (self.block_starts(size) >> (self.shift + self.every_bits)) * stratum
        end = np.minimum(first + stratum, size)
        end[-1:] = size
        return first, end

    def covered(self, size: int, position: int) -> np.ndarray:
        """For each held-out block, the share of the bytes it stands for (`strata`) that lies
        before `position`."""
        first, end = self.strata(size)
        return np.clip((position - first) / (end - first), 0, 1)

    def training_covered(self, size: int, position: int) -> np.ndarray:
        """For each held-out block, how many of the training bytes it stands for (`strata`)
        lie before `position`."""
        first, end = self.strata(size)
        return (self.training_bytes_before(np.clip(position, first, end))
                - self.training_bytes_before(first)).astype(float)

    def training_bytes_before(self, position):
        """How many of the first `position` bytes are training bytes (not held out); also
        element-wise over an array of positions."""
        position = np.asarray(position, dtype=np.int64)
        block = 1 << self.shift
        current = position >> self.shift
        held = self.blocks_held_out(np.arange(int(current.max(initial=0)) + 1))
        before = np.concatenate(([0], np.cumsum(held)))  # held-out blocks before each block
        return position - before[current] * block - held[current] * (position & (block - 1))

    def warm_bytes(self, size: int, seen: int) -> int:
        """Bytes one evaluation after `seen` training bytes learns from before its blocks."""
        starts = self.block_starts(size)
        stops = np.minimum(starts, seen)
        return int(np.maximum(0, self.training_bytes_before(stops)
                              - self.training_bytes_before(np.maximum(0, starts - self.warm)))
                   .sum())

    def mask(self, size: int) -> np.ndarray:
        """Whether each of `size` bytes is held out."""
        return np.repeat(self.blocks_held_out(self._blocks(size)), 1 << self.shift)[:size]


@kernel(inline="always")
def mix64(x: np.uint64) -> np.uint64:
    x = (x ^ (x >> np.uint64(31))) * np.uint64(0x7FB5D329728EA185)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x81DADEF4BC2DD44D)
    return x ^ (x >> np.uint64(33))


@kernel(inline="always")
def held_out(p: int, view) -> bool:
    """Whether byte p belongs to the held-out slice (`Holdout`): view[2] is log2 of the block
    size, view[3] log2 of `every`, view[5] the rotation."""
    block = p >> view[2]
    pick = mix64(np.uint64((block >> view[3]) + 1)) >> np.uint64(64 - view[3])
    return np.uint64(block & ((1 << view[3]) - 1)) == pick ^ np.uint64(view[5])


@kernel(inline="always")
def visible(p: int, pos: int, view) -> bool:
    """Whether history byte p may be read when coding byte pos.

    `view` = (seen, block_start, shift, log2 every, mode, rotation). Learning or relearning,
    the model reads only training bytes before pos. Evaluating after `seen` bytes and coding a
    held-out block, it reads the training bytes before `seen` (its memory, wherever they lie:
    the final model codes a held-out block as if it came after all it learned from), the
    block's bytes before pos, and the held-out blocks before it, which the evaluation coded
    first (`_evaluate`).
    Relearning must not read ahead: the match model would find the very byte it is learning
    from (its index holds every training position) and learn to trust itself: held-out JSON
    records cost 17% more than the online code."""
    if p < 0:
        return False
    if view[1] <= p < view[1] + (1 << view[2]):
        return p < pos
    if p >> view[2] == pos >> view[2]:  # pos's own block, not the one evaluated: training
        return p < pos
    if p >= pos and view[4] != EVALUATING:
        return False
    if held_out(p, view):
        return view[4] == EVALUATING and p < view[1]
    return p < view[0]


def read_only(data: np.ndarray) -> np.ndarray:
    """`data` as the kernels take it: a read-only view, as bytes read from a file come. numba
    compiles a kernel again for writable arrays (see LEARNING)."""
    view = data.view()
    view.flags.writeable = False
    return view


@kernel(inline="always")
def block_views(view, begin):
    """Views of an evaluation (`view`) coding the held-out block at `begin`, and relearning
    the training bytes before it. Their modes are int64, not literal constants, so a kernel
    called with them reuses its one compiled version (see LEARNING)."""
    return ((view[0], begin, view[2], view[3], np.int64(EVALUATING), view[5]),
            (view[0], begin, view[2], view[3], np.int64(RELEARNING), view[5]))
