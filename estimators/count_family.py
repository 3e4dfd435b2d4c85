"""The count-based observer family on the frontier: runs of each size that log (compute, S, H).

The sizes are counts of whole bytes, blended or weighed by Bayes' rule
(`estimators/blending.py`), the cheapest, and bitwise context mixing
(`estimators/context_mixing.py`); each config makes its `model()` and counts its operations
(`train_ops`, `eval_ops`). Each size makes one prequential pass over the training bytes in
their natural order (a match model needs it: repeats 64 bytes or a whole file
apart are what it finds). At checkpoints placed by compute (every budget of the ladder, every
power of ten) the model codes the held-out blocks. With p the position the pass reached, d the
training bytes coded so far, D all bytes, L the held-out loss of the data before p and L' that
of the data ahead of p (each block standing for its stratum; L' priced conservatively, never
below L nor below the online code's bits per byte so far: `_region_losses`), and L_d that of
the d training bytes themselves (`PairedLoss.corrected`: the two differ where the draw of
held-out blocks was unbalanced),
    S = online bits of the d bytes - L_d * d        H = L * p + L' * (D - p)
At the end p = D and this is the transformer's prequential split (H = L * D). Before
it, the data ahead is priced by blocks ahead: on text that drifts from file to file, a block
among bytes the model learned from (its neighbours relearned, its file's words counted) codes
far cheaper than new data, and pricing the data ahead by it made a half-trained model's S+H
the lowest (Python source, 512 KiB: 1.266 at 240 KiB, 1.302 at the end).
The compute of a checkpoint counts every byte learned from and every held-out evaluation made
so far (`estimators/flops.py`). Each held-out block is coded by a mixture of the uniform,
frozen and adaptive codes of the model and the online code the pass paired it with
(`estimators/holdout.py`, `mixed_code`). The runs are
deterministic: seeds do not change them, so they run once per estimate.
"""
from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from estimators.blending import BlendingConfig
from estimators.context_mixing import ContextMixingConfig
from estimators.holdout import Holdout
from estimators.data import TokenData, load
from estimators.frontier import price_ahead
from estimators.pairing import PairedLoss

FAMILY = "context-mixing"
PROGRESS_BYTES = 1 << 20  # coded between progress ticks (a stop asked for is seen at a tick)

# Sizes from cheap to strong: more contexts cost more operations per byte and buy more.
Size = BlendingConfig | ContextMixingConfig

SIZES: tuple[Size, ...] = (
    # Counts of whole bytes after contexts of order 0-4, blended: 200 operations a byte where
    # the bitwise sizes spend 1,518-5,892, and 6-8 MB/s a core where they code 0.3-1.6
    # (`bench/bench_count.py`).
    BlendingConfig("blend-order4", orders=(0, 1, 2, 3, 4), table_bits=20),
    # The same with every order to 8: a chain over a few symbols of order 5-8 is coded from its
    # exact context, where the bitwise sizes mix neighbouring orders bit by bit: of 24 chains
    # of order 5-8 over 2-4 symbols (256 KiB) it won 10, whose H went from 0.4-2.1% above the
    # sample's oracle to between 1.2% under and 1.1% above (`bench/fidelity --drawn-chains 24
    # --orders 5 8`; docs/count-family.md, "Exact contexts of order 5-8").
    # Half the slots of the one before: it never wins on text, where the tables fill.
    BlendingConfig("blend-order8", orders=(0, 1, 2, 3, 4, 5, 6, 7, 8), table_bits=19),
    # The same counts weighed by Bayes' rule, a predictor per order and Dirichlet concentration:
    # on a Markov chain the posterior settles on the chain's own order, and the final model
    # codes held-out bytes within 0.1-0.7% of the Bayes bound (MarkovSource.posterior_bits)
    # where the sizes before were 0.1-5% above it (256 KiB: order 6 over 4 symbols, 4,096
    # states, 1.0350 times the oracle against a bound of 1.0319; `blend-order8` 1.0850).
    BlendingConfig("bayes-order8", orders=(0, 1, 2, 3, 4, 5, 6, 7, 8), table_bits=18, bayes=True),
    # Byte pairs alone: on an order-1 source over many symbols, the order-2 counters of the next
    # size are too thin to help and their noise costs (256 KiB, order 1 over 256 symbols: the
    # final model's held-out loss 2.7% above the rate here, 6.3% with order 2 mixed in). Its
    # tables are not smaller: with 2**16 buckets the 4,352 its contexts fill collide, +0.5%.
    # The two smallest look repeats up by their last 8 bytes alone: the index by the last 32
    # cost them 11-19% of their speed, and the larger sizes find long repeats.
    ContextMixingConfig("cm-order1", orders=(0, 1), word=False, column=False, match_min=8,
                        table_bits=18, long_repeats=False),
    ContextMixingConfig("cm-order2", orders=(0, 1, 2), word=False, column=False, match_min=8,
                        table_bits=18, long_repeats=False),
    ContextMixingConfig("cm-order4", orders=(0, 1, 2, 3, 4), word=False, column=True,
                        match_min=6, table_bits=19),
    # Long contexts with counters that settle: a chain over a few symbols needs contexts as
    # long as its order (256 KiB, order 5 over 2 symbols: the final model 15% above the rate
    # with orders up to 4, 2-3% with this; order 8 over 2 symbols: 40-50% and 0.3-1.9%). With
    # orders up to 8 alone, chains over 2 symbols of order 12, 16 and 20 cost 0.81, 0.82 and
    # 0.83 bits/byte where lzma paid 0.62, 0.63 and 0.75 (the true probabilities: 0.33, 0.20
    # and 0.11); orders 12, 16 and 24 took them to 0.36, 0.37 and 0.69 (quick, 256 KiB;
    # `bench/fidelity --more-sources`), and Python source from 1.334 to 1.336. Orders 5 and 7
    # too: mixing 4 with 6, or 6 with 8, does not make an exact context (256 KiB, order 5 over 5
    # symbols: 8.5% above the rate before, 4.2% after; order 7 over 3: 4.6% and 2.6%; Python
    # source 1.3081 and 1.3046 bits/byte, the pass 10% slower).
    ContextMixingConfig("cm-order24", orders=(0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24), word=True,
                        column=True, match_min=8, table_bits=19),
    # The largest also follows drifting statistics (machine code, mixed files): sparse contexts
    # and counters that keep adapting fast. On 256 KiB of Python's shared objects that took its
    # online code from 2.93 to 2.64 bits/byte (lzma: 2.70); stationary sources lose 1% with it,
    # and the smaller sizes still code those. Its delta model codes integer data by the
    # differences from a stride back (an int32 counter 2.04 -> 1.68 bits/byte, 256 KiB).
    ContextMixingConfig("cm-order6", orders=(0, 1, 2, 3, 4, 6), word=True, column=True,
                        match_min=6, table_bits=20, sparse=True, counter_limit=20, delta=True),
)

# The least data a run can score: one stratum of held-out blocks (`Holdout.for_size`: 16 of
# 16 bytes), one of them held out. With less, nothing is held out and no checkpoint has an H.
MIN_BYTES = 256

Progress = Callable[[int], None]  # called with the number of bytes just coded

# A run on this much data or more has its kernels compiled by a child process first
# (`compile_apart`). Below it the memory numba's compiler keeps matters less than the child's
# 3-4 s (loading cached kernels, imports included).
COMPILE_APART_BYTES = 8 << 20
_compile_lock = threading.Lock()  # held by the first run to ask, until its child has ended
_compile_asked = False


def compile_kernels() -> None:
    """Compiles every size's kernels into numba's cache, or loads them from it: a run of each
    on 8 KiB."""
    data = load(bytes(range(256)) * 32)
    for cfg in SIZES:
        run(data, cfg, [1e12])


def compile_apart() -> None:
    """Has a short-lived child process compile the kernels (`compile_kernels`), once per
    process, so that this one only loads them from numba's cache. A process that compiles them
    keeps what the compiler allocated, about 630 MiB, for good: quick on 100 MiB peaked at 2,382
    MiB so, 1,866 with the kernels cached (2-core AMD EPYC: 77 s to compile, 3.5 s to load).
    Where the child cannot write the cache, this process compiles them as before. The child
    finds this package where this process found it."""
    global _compile_asked
    with _compile_lock:
        if not _compile_asked:
            _compile_asked = True
            package_root = str(Path(__file__).resolve().parents[1])  # importable as here
            path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
            try:
                subprocess.run([sys.executable, "-c", "from estimators.count_family import "
                                "compile_kernels; compile_kernels()"], check=False,
                               env={**os.environ, "PYTHONPATH": path},
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            except OSError:  # no interpreter to start (an embedded one): compile here
                pass


def token_stream(data: TokenData) -> tuple[np.ndarray, int]:
    """The bytes the family codes, and bytes per token.

    Byte data is coded as it is. Token ids of a larger vocabulary are coded as fixed-width
    big-endian integers: the bitwise code then decides a token's id bit by bit from the most
    significant, a valid code over every id of that width, so over the vocabulary too."""
    width = data.token_bytes  # the width `bytes_coded` counts: per-byte figures agree
    if width == 1:
        return np.ascontiguousarray(data.tokens, dtype=np.uint8), 1
    stream = np.ascontiguousarray(data.tokens, dtype=f">u{width}").view(np.uint8)
    return stream, width


def run_memory_bytes(cfg: Size, data_bytes: int) -> int:
    """About the most memory a process making one run of `cfg` holds: the model's state, the
    data twice (as loaded and as the coded stream), and 512 MiB for the interpreter, numpy and
    numba, which compiles the kernels in a process that finds no cached copy (a node's first
    run). Measured peaks on random bytes, cm-order6 with its 12 contexts: 697 MiB on 1 MiB with
    the kernels cached, against 923. With 8 (before sparse contexts): 672 MiB compiling them (a
    fresh clone), against 794; 717 MiB on 16 MiB, cached, against 1,096."""
    return cfg.fitted(data_bytes).state_bytes + 2 * data_bytes + (512 << 20)


# A stop short of the end adds at least this share to the bytes the last one had learned from:
# where evaluations eat a mark, its stop can land a few bytes past the last (48,349 then
# 50,172 on 512 KiB), and the two held-out draws' noise then decides which scores lower.
MIN_STOP_GROWTH = 1.25


def _checkpoint_marks(budgets: Sequence[float]) -> list[float]:
    """The compute at which a run stops to evaluate: every budget of the ladder and every power
    of ten below the top. Each budget's best point is then the furthest the run can reach
    within it, and preset ladders (powers of ten) share their checkpoints, so a larger preset's
    run passes through every point of a smaller one's. An evaluation per doubling of the data
    took 60-66% of a run's time on 1 MiB."""
    top = max(budgets)
    return sorted({10.0 ** k for k in range(3, 20) if 10.0 ** k < top} | set(budgets))


def _furthest_within(cost: Callable[[int], float], position: int, size: int, mark: float,
                     width: int) -> int:
    """The furthest stop in [position, size], whole tokens, whose cost (rising with the stop)
    is within `mark`; `position` when none is."""
    low, high = position, size
    while low < high:
        middle = (low + high + 1) // 2
        if cost(middle) <= mark:
            low = middle
        else:
            high = middle - 1
    return low - low % width


def _stratified_error(per_block: np.ndarray, stands_for: np.ndarray) -> float:
    """Standard error of the held-out loss over the whole data (bits per byte), from its blocks
    in file order, one per stratum, each weighing the bytes it stands for.

    Each block errs by how far it lies from its stratum's mean, and the variance within a
    stratum is estimated from the differences between neighbouring blocks (von Neumann's
    successive differences), so that what sets strata apart, as where the data changes kind,
    counts little, and never less than it is. From the blocks' spread, the error read 0.82
    bits/byte on 20,000 random bytes followed by 24,000 of a phrase repeated, where the
    estimate is right to 0.01; now 0.22. On stationary data the two agree
    (`bench/bench_pairing.py`)."""
    if len(per_block) < 2:
        return 0.0
    share = stands_for / stands_for.sum()
    return float(math.sqrt(np.mean(np.diff(per_block) ** 2) / 2 * (share ** 2).sum()))


def _standard_error(per_block: np.ndarray, blocks: int) -> float:
    """Standard error of a mean over `blocks` held-out blocks, from the spread of `per_block`
    (bits per byte each); 0 from a single value, which has no spread (and JSON has no NaN)."""
    return float(per_block.std(ddof=1) / math.sqrt(blocks)) if len(per_block) > 1 else 0.0


def _region_losses(bits: np.ndarray, count: np.ndarray, learned: np.ndarray,
                   online: float = 0.0, stands_for: np.ndarray | None = None
                   ) -> tuple[float, float]:
    """Held-out bits per byte of the part of the data a checkpoint learned from, and the price
    of the part ahead of it, each from the held-out blocks that stand for it: `learned` is the
    share of each block's stratum that the checkpoint learned from, and a block counts for
    each part by its share (the blocks ahead price both before anything was learned from; at
    the end, nothing is ahead). Counted by where the block itself lies, a stratum split by the
    checkpoint went wholly to one side: 80% into 256 KiB (constant bytes, then as many random
    ones) the blocks learned from were 33% random where the data was 38%, and S came out 0.28
    bits/byte where the truth is 0.

    The part ahead is bytes no model has coded yet, estimated from a few blocks, so it is priced
    by `frontier.price_ahead`, at their mean plus two standard errors (at most the uniform
    code's 8 bits/byte): the frontier takes the lowest S+H, and priced at the mean alone the
    checkpoint whose blocks ahead happened to be cheap won. On 256 KiB (constant bytes, then as
    many random ones), 8 of the 14 blocks ahead of a checkpoint 17% in were random where the
    data ahead is 60% random, and it reported S+H = 3.80 bits/byte, under the 4 the random half
    alone costs. Nor is it below the part learned from: a model codes its own data best, so a
    price below would be the blocks' noise (a Markov chain's H came out 0.26% below its rate).
    Nor below `online`, the online code's bits per byte so far: sixteen blocks can be an unlucky
    draw. 1 KiB random blocks alternating with zero ones (256 KiB) had 4 random among 16, 3 of
    the 14 ahead of a checkpoint 14% in, and `cm-order2` reported S+H = 3.66 bits/byte there,
    under the 4 the random blocks alone cost, where the online code had paid 4.07. (The online
    code since the last checkpoint would be noisy: on text that drifts, a stretch of hard files
    raised the next checkpoint's S+H over the one before.)"""
    # each block's bytes weigh as many as it stands for: strata differ where the last is short
    weight = 1.0 if stands_for is None else stands_for / np.maximum(count, 1)

    def loss(share: np.ndarray) -> float:
        return float((share * weight * bits).sum() / (share * weight * count).sum())
    learned = np.asarray(learned, dtype=float)
    ahead = 1.0 - learned
    if not ahead.any():  # the end of the pass: nothing is ahead
        return loss(learned), loss(learned)
    per_block = bits / np.maximum(count, 1)
    spread = per_block[ahead > 0] if (ahead > 0).sum() > 1 else per_block  # one has no spread
    ahead_loss = loss(ahead)
    price = price_ahead(ahead_loss, _standard_error(spread, ahead.sum()), 8.0, floor=online)
    learned_loss = loss(learned) if learned.any() else ahead_loss
    return learned_loss, max(learned_loss, price)


def _training_loss(training_bits: np.ndarray, block_bytes: np.ndarray, holdout: Holdout,
                   size: int, position: int, coded: int) -> float:
    """L_d, what S subtracts: each stratum's training bytes before `position` at its block's
    loss, over the `coded` training bytes. Weighed by all its bytes, a stratum the checkpoint
    splits after its held-out block counted the block among the training bytes (constant
    bytes, then random: S = -0.0126 bits/byte just into the random half, where the truth is
    0)."""
    return float((training_bits / np.maximum(block_bytes, 1)
                  * holdout.training_covered(size, position)).sum()) / max(coded, 1)


def learn(model, stream: np.ndarray, start: int, stop: int, holdout: Holdout,
          pairing: PairedLoss) -> tuple[float, int]:
    """The online pass over stream[start:stop]: each training byte coded, then learned from,
    and each held-out block it reaches paired first (`estimators/pairing.py`). Returns the
    training bytes' (bits, count)."""
    bits, count, position = 0.0, 0, start
    while position < stop:
        held = pairing.held_out_at(position)
        if held is not None:
            pairing.add_paired(held, *model.code_held_out(stream, position, holdout))
        end = min(stop, pairing.next_stop(position))
        stretch_bits, stretch_count = model.code(stream, position, end, holdout)
        pairing.add_training(position, stretch_bits, stretch_count)
        bits, count, position = bits + stretch_bits, count + stretch_count, end
    return bits, count


def slice_run(cfg: Size, data: np.ndarray, holdout: Holdout) -> dict:
    """One whole pass of `cfg` over `data` with this held-out slice, then its final model on
    the slice: L uncorrected, corrected (H's) and corrected over the training bytes (S's), each
    block weighing its stratum; the online bits and bytes of the training bytes; the blocks'
    bits and bytes; the standard error a run reports; and the model. Over every rotation of a slice
    (`Holdout.rotation`) the blocks' bits measure the loss one slice estimates
    (`bench/bench_pairing.py --rotations`)."""
    size = len(data)
    model = cfg.fitted(size).model()
    pairing = PairedLoss(holdout, size)
    online, coded = learn(model, data, 0, size, holdout, pairing)
    bits, count = model.evaluate(data, size, holdout, pairing.online_bits())
    first, end = holdout.strata(size)
    stands_for = (end - first).astype(float)
    corrected, _ = pairing.corrected(bits, count, size)
    training, _ = pairing.corrected(bits, count, size, whole=False)

    def loss(block_bits: np.ndarray) -> float:  # a run's L at the end of its pass
        return _region_losses(block_bits, count, np.ones(len(count)), stands_for=stands_for)[0]
    return {"uncorrected": loss(bits), "corrected": loss(corrected),
            "training": _training_loss(training, count, holdout, size, size, coded),
            "online": online, "coded": coded, "bits": bits, "count": count,
            "stderr": _stratified_error(corrected / count, stands_for), "model": model}


def every_rotation(cfg: Size, data: np.ndarray) -> tuple[list[dict], float]:
    """`slice_run` over every rotation of the data's held-out slice, and what their final
    models code all the blocks in, bits per byte: the loss that one slice estimates."""
    base = Holdout.for_size(len(data))
    runs = [slice_run(cfg, data, Holdout(base.shift, base.every, rotation))
            for rotation in range(base.every)]
    return runs, sum(r["bits"].sum() for r in runs) / sum(r["count"].sum() for r in runs)


def checkpoint_stops(cfg: Size, size: int, budgets: Sequence[float],
                     width: int = 1) -> tuple[tuple[int, float], ...]:
    """Where a run of `cfg` over `size` bytes (tokens of `width` bytes) stops to evaluate, and
    the operations it has spent there, everything before included: the furthest stop within
    each mark of `_checkpoint_marks(budgets)`, where it reaches the end or MIN_STOP_GROWTH
    times the last stop. It depends on the data's size alone, so the
    sweep's ladder, its lanes' work and the run share one plan (1.5 s for six sizes on 100 MiB)."""
    return _planned_stops(cfg, size, tuple(budgets), width)


@functools.lru_cache(maxsize=64)
def _planned_stops(cfg: Size, size: int, budgets: tuple[float, ...],
                   width: int) -> tuple[tuple[int, float], ...]:
    holdout, fitted = Holdout.for_size(size), cfg.fitted(size)
    pairing = PairedLoss(holdout, size)
    heldout_bytes = size - int(holdout.training_bytes_before(size))  # no mask: 8 bytes per byte

    def eval_cost(seen: int) -> float:
        return fitted.eval_ops(heldout_bytes, holdout.warm_bytes(size, seen))

    def train_cost(stop: int) -> float:  # coding every byte before `stop` online
        return fitted.train_ops(int(holdout.training_bytes_before(stop))
                                + pairing.paired_bytes_before(stop))

    stops: list[tuple[int, float]] = []
    position, evaluated = 0, 0.0
    for mark in _checkpoint_marks(budgets):
        stop = _furthest_within(lambda s: train_cost(s) + eval_cost(s), position, size,
                                mark - evaluated, width)
        if stop <= position or (stop < size and stop < MIN_STOP_GROWTH * position):
            continue  # not worth an evaluation: the next mark's stop goes further
        position, evaluated = stop, evaluated + eval_cost(stop)
        stops.append((stop, train_cost(stop) + evaluated))
        if stop == size:
            break
    return tuple(stops)


def run(data: TokenData, cfg: Size, budgets: Sequence[float],
        progress: Progress | None = None) -> dict | None:
    """One pass of one size, checkpointed at `checkpoint_stops`, spending at most the largest
    budget in all operations.

    Returns the run as the sweep's plain dict (like a transformer run), or None when not even
    the first checkpoint fits the budget."""
    started = time.perf_counter()
    stream, width = token_stream(data)
    size = len(stream)
    if size >= COMPILE_APART_BYTES:
        compile_apart()
    holdout = Holdout.for_size(size)
    heldout_bytes = size - int(holdout.training_bytes_before(size))
    fitted = cfg.fitted(size)
    pairing = PairedLoss(holdout, size)
    first, end = holdout.strata(size)
    stands_for = (end - first).astype(float)
    model = fitted.model()
    online_bits, coded, position, spent = 0.0, 0, 0, 0.0
    reached = 0  # where the checkpoint before stopped
    checkpoints: list[dict] = []
    for stop, spent in checkpoint_stops(cfg, size, budgets, width):
        while position < stop:
            end = min(stop, position + PROGRESS_BYTES)
            bits, count = learn(model, stream, position, end, holdout, pairing)
            online_bits, coded, position = online_bits + bits, coded + count, end
            if progress:
                progress(count)
        block_bits, block_bytes = model.evaluate(stream, position, holdout,
                                                 pairing.online_bits())
        covered = holdout.covered(size, position)
        training_bits, _ = pairing.corrected(block_bits, block_bytes, position, whole=False)
        block_bits, slope = pairing.corrected(block_bits, block_bytes, position)
        trained = _training_loss(training_bits, block_bytes, holdout, size, position, coded)
        learned, ahead = _region_losses(block_bits, block_bytes, covered,
                                        online_bits / max(coded, 1), stands_for)
        entropy = learned * position + ahead * (size - position)
        per_block = block_bits / np.maximum(block_bytes, 1)
        stderr = _stratified_error(per_block, stands_for)
        # this model on the data the checkpoint before had learned from: the two models' losses
        # over the same bytes, where the data changes kind along the file (`_run_warnings`)
        earlier = _region_losses(block_bits, block_bytes, holdout.covered(size, reached),
                                 stands_for=stands_for)[0] if reached else None
        extra = {"online_bits": online_bits, "heldout_tokens": heldout_bytes // width,
                 "trained_bits_per_token": trained * width,  # L_d, what S subtracts
                 "learned_bits_per_token": learned * width,  # L, over the data before position
                 "earlier_bits_per_token": None if earlier is None else earlier * width,
                 "position": position // width, "paired_slope": slope}
        reached = position
        checkpoints.append({
            "tokens_trained": coded // width, "compute_flops": spent,
            "epiplexity_bits": online_bits - trained * coded, "entropy_bits": entropy,
            "heldout_bits_per_token": entropy / size * width, "heldout_stderr": stderr * width,
            "extra": extra})
    if not checkpoints:
        return None
    return {"family": FAMILY, "estimator": "prequential", "seed": None,
            "params": fitted.info()["params"], "model": fitted.info(),
            "tokens_trained": coded // width, "dataset_tokens": len(data.tokens),
            "flops_spent": spent, "budget_flops": max(budgets),
            "seconds": time.perf_counter() - started, "checkpoints": checkpoints}
