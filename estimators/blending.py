"""Blending: a count-based observer that predicts each byte whole from counts (numba-compiled).

For each order k the model counts, per context of the last k bytes, the bytes that followed
it. A byte's probability blends the orders from the shortest up:

    p_-1(b) = 1/256        p_k(b) = (1 - w_k) * c_k(b) / n_k + w_k * p_{k-1}(b)

with c_k(b) the count of b after this order-k context and n_k their sum. The weight w_k left
to the shorter orders is learned as the model reads, one weight per cell of contexts alike
(same order, about as many observations, about as many distinct bytes): PPM's blending, its
escape learned by descending the code length. A context never seen leaves p_{k-1} as it is.
One probability per order for the byte coded, where the bitwise context-mixing sizes make
eight mixed decisions over every context: it codes several times faster, the family's cheap
end of the compute axis.

A Bayes size (`bayes=True`) mixes instead one predictor per order and Dirichlet
concentration a (BAYES_CONCENTRATIONS), each the posterior predictive of its order's counts,

    p_{k,a}(b) = (c_k(b) + a * A * q(b)) / (n_k + a * A)

with A the distinct bytes seen so far and q uniform over them (a byte never seen shares an
escape), and weighs them by their posterior: each weight is multiplied by the probability its
predictor gave the byte, then all are normalised. The uniform code is one more predictor: after
131,072 equal bytes, the escape charged each new byte about 25 bits, and the random bytes that
followed paid 4,300 bits finding their 255 values. On an order-k chain it codes within a few
bits of the predictor of the chain's own order and nearest concentration, which is what the
Bayes bound of a sample (`synthetic.MarkovSource.posterior_bits`) assumes known. Its hashed
orders look a context up in a pair of slots, so that two contexts that meet in one slot
do not keep resetting each other, and it keeps a slot per 2 bytes of data.

Why it is a valid prequential code: a context's counts are read with the sum they were kept
with (a slot holds one context's counts, their sum, and a check of which context it holds; a
hash collision starts the slot afresh, and a byte that finds a slot full takes the place of
the least counted, whose count leaves the sum), and a weight's cell depends on the context,
never on the byte coded, so each p_k sums to one over the 256 values; every count and weight
comes from earlier bytes only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from estimators import flops
from estimators.holdout import (EVALUATING, LEARNING, PAIRING, RELEARNING, Holdout,
                                block_views, held_out, mixed_code, read_only, visible)
from estimators.kernels import kernel

COUNT_LIMIT = 65535  # a context's counts are halved when one of them reaches it
FULL_ORDERS = 1  # orders up to this keep all 256 counts of every context, indexed directly
# A longer context keeps the counts of at most SHORT_ENTRIES distinct bytes, in one 128-byte
# slot of a hashed table (a byte that finds no room replaces the least counted, whose count
# leaves the sum with it): long contexts see few distinct bytes. Slots of all 256 counts coded
# random bytes at 2.1 MB/s, clearing 512 bytes a byte and order; 14 entries cost 1 MiB of
# Python source 0.11 bits/byte more than 30, and 62 saved 0.03.
SHORT_ENTRIES = 30
SHORT_WORDS = SHORT_ENTRIES + 2  # check, sum and distinct, then a byte and its count each
# the weights' cells: order x observations (log2, 12 levels) x distinct bytes / observations (8)
OBSERVED_LEVELS, DISTINCT_LEVELS = 12, 8
# Each weight takes a step down the gradient of its order's code length, scaled by w (1 - w) so
# that it nears 0 or 1 without crossing: on 256 KiB of random bytes the blend's online code is
# then 8.002 bits/byte, where learned as PPM's chance of a new byte it was 8.16-8.28.
WEIGHT_RATE, WEIGHT_MIN = 0.05, 1e-4
# The Bayes sizes' predictors: a Dirichlet concentration per symbol each, for every order (rows
# of the chains of `bench/fidelity` are drawn at 0.1-1.0). A weight never falls below
# BAYES_FLOOR of their sum, so a predictor that lost early can win later in 40 bits.
BAYES_CONCENTRATIONS = np.array([1 / 32, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0])
BAYES_FLOOR = 1e-12


@dataclass(frozen=True)
class BlendingConfig:
    """One blending size: its orders and the slots of each hashed order."""

    name: str
    orders: tuple[int, ...]  # increasing: up to FULL_ORDERS indexed directly, longer ones hashed
    table_bits: int  # log2 of the slots of each hashed order
    bayes: bool = False  # a posterior mixture of each order's predictors, not a learned blend

    def __post_init__(self):
        if self.bayes and self.orders[0] != 0:
            raise ValueError("a Bayes size needs order 0: its predictors' alphabet is the "
                             "bytes order 0 has seen")

    @property
    def contexts(self) -> int:
        return len(self.orders)

    @property
    def _mixed_per_order(self) -> int:
        """A Bayes size's predictors an order; 0 for a blend."""
        return len(BAYES_CONCENTRATIONS) if self.bayes else 0

    @property
    def predictors(self) -> int:
        """Weights the model mixes by: one per order and concentration and the uniform code
        (Bayes sizes), else one per cell of contexts alike."""
        if self.bayes:
            return self.contexts * self._mixed_per_order + 1
        return self.contexts * OBSERVED_LEVELS * DISTINCT_LEVELS

    @property
    def full_slots(self) -> int:
        return sum(256 ** k for k in self.orders if k <= FULL_ORDERS)

    @property
    def short_slots(self) -> int:
        return sum(1 << self.table_bits for k in self.orders if k > FULL_ORDERS)

    @property
    def state_bytes(self) -> int:
        return (self.full_slots * (256 * 2 + 8) + self.short_slots * SHORT_WORDS * 4
                + self.predictors * 8)

    def fitted(self, data_bytes: int) -> "BlendingConfig":
        """The same model with no more hashed slots than a slot per 8 bytes of data (a Bayes
        size: per 2)."""
        per_slot = 1 if self.bayes else 3
        bits = min(self.table_bits, max(10, math.ceil(math.log2(max(data_bytes, 2))) - per_slot))
        return replace(self, table_bits=bits)

    def model(self) -> "BlendingModel":
        return BlendingModel(self)

    def train_ops(self, tokens: int) -> float:
        return flops.blending_train_ops(self.contexts, tokens, self._mixed_per_order)

    def eval_ops(self, tokens: int, warm: int) -> float:
        return flops.blending_eval_ops(self.contexts, tokens, warm, self._mixed_per_order)

    def info(self) -> dict:
        """What a result says about this size: its orders and how many counts it adapts."""
        return {"name": self.name, "params": 256 * self.full_slots + SHORT_ENTRIES * self.short_slots,
                "orders": list(self.orders), "table_bits": self.table_bits,
                **({"concentrations": BAYES_CONCENTRATIONS.tolist()} if self.bayes else {})}


class BlendingModel:
    """The learned state of one blending model: its counts and its weights."""

    def __init__(self, cfg: BlendingConfig):
        self.cfg = cfg
        self.orders = np.asarray(cfg.orders, dtype=np.int64)
        # where each order's slots start, in `counts` (full orders) or `short` (hashed ones)
        first, full_at, short_at = [], 0, 0
        for k in cfg.orders:
            first.append(full_at if k <= FULL_ORDERS else short_at)
            if k <= FULL_ORDERS:
                full_at += 256 ** k
            else:
                short_at += 1 << cfg.table_bits
        self.first_slot = np.asarray(first, dtype=np.int64)
        self.counts = np.zeros((full_at, 256), dtype=np.uint16)
        self.sums = np.zeros((full_at, 2), dtype=np.uint32)  # observations, distinct bytes
        self.short = np.zeros((max(short_at, 1), SHORT_WORDS), dtype=np.uint32)
        # a Bayes size's prior is even over its predictors; a blend leaves each order half
        self.weights = np.full(cfg.predictors, 1.0 / cfg.predictors if cfg.bayes else 0.5)

    def _args(self) -> tuple:
        return (self.orders, self.first_slot, (1 << self.cfg.table_bits) - 1, self.counts,
                self.sums, self.short, self.weights, self.cfg.bayes)

    def _saves(self, rows: int) -> tuple:
        """Buffers for the slots a pass over `rows` bytes may save before they change (a full
        one once a byte and order, a short one twice: when reset and when counting), and the
        count of each."""
        full = rows * sum(k <= FULL_ORDERS for k in self.cfg.orders)
        short = 2 * rows * sum(k > FULL_ORDERS for k in self.cfg.orders)
        return (np.zeros((full, 256), np.uint16), np.zeros((full, 3), np.int64),
                np.zeros((short, SHORT_WORDS + 1), np.int64), np.zeros(2, np.int64))

    def code(self, data: np.ndarray, start: int, stop: int, holdout: Holdout,
             per_byte: np.ndarray | None = None) -> tuple[float, int]:
        """Code the training bytes of data[start:stop] (history data[:start] already seen)
        and learn from each after coding it. Returns (bits, bytes coded)."""
        out = per_byte if per_byte is not None else np.zeros(1)
        data = read_only(data)
        view = holdout.view(stop, len(data) + 1, LEARNING)
        return _code(data, start, stop, view, True, *self._args(), out, per_byte is not None,
                     *self._saves(1))

    def code_held_out(self, data: np.ndarray, begin: int, holdout: Holdout) -> tuple[float, int]:
        """Bits and bytes of the held-out block at `begin` as the online pass would have coded
        it, then forgotten (`ContextMixingModel.code_held_out`)."""
        data = read_only(data)
        view = holdout.view(begin, begin, PAIRING)
        saves = self._saves(1 << holdout.shift)
        weights = self.weights.copy()
        bits, coded = _code(data, begin, min(begin + (1 << holdout.shift), len(data)), view,
                            True, *self._args(), np.zeros(1), False, *saves)
        _restore(self.counts, self.sums, self.short, *saves)
        self.weights[:] = weights
        return bits, coded

    def evaluate(self, data: np.ndarray, seen: int, holdout: Holdout,
                 online: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Bits and bytes of every held-out block under the model trained on data[:seen], each
        the mixture of the uniform, frozen and adaptive codes (and the `online` one, where
        given) that `ContextMixingModel.evaluate` makes (adaptive: the counts relearn the
        training bytes just before the block, then learn each block byte after coding it).
        Nothing is kept: every slot is saved before it changes and restored."""
        frozen, adaptive, count = self.evaluate_both_ways(data, seen, holdout)
        return mixed_code(frozen, adaptive, count, online), count

    def evaluate_both_ways(self, data: np.ndarray, seen: int,
                           holdout: Holdout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bits of every held-out block coded frozen, bits coded adaptively, and its bytes."""
        data = read_only(data)
        view = holdout.view(seen, 0, EVALUATING)
        return _evaluate(data, seen, view, holdout.block_starts(len(data)), holdout.warm,
                         *self._args(), *self._saves((1 << holdout.shift) + holdout.warm))

@kernel(inline="always")
def _level(n: int) -> int:
    """1 + log2 of n observations (n > 0), capped at OBSERVED_LEVELS - 1."""
    return min(OBSERVED_LEVELS - 1, math.frexp(n)[1])


@kernel(inline="always")
def _short_entry(short, s, byte):
    """Where `byte` is among the entries of short slot s; -1 if it is not."""
    for i in range(2, 2 + (short[s, 1] >> np.uint32(24))):
        if short[s, i] & np.uint32(255) == byte:
            return i
    return -1


@kernel(inline="always")
def _learn_short(short, s, byte, at):
    """Count `byte` in short slot s (at entry `at`, -1: not there yet)."""
    n, distinct = short[s, 1] & np.uint32(0xFFFFFF), short[s, 1] >> np.uint32(24)
    if at < 0:
        if distinct < SHORT_ENTRIES:
            at = 2 + distinct
            distinct += 1
        else:  # no room: the least counted byte goes, and its count with it
            at = 2
            for i in range(3, SHORT_WORDS):
                if short[s, i] >> np.uint32(8) < short[s, at] >> np.uint32(8):
                    at = i
            n -= short[s, at] >> np.uint32(8)
        short[s, at] = np.uint32(byte)
    short[s, at] += np.uint32(256)
    n += 1
    if short[s, at] >> np.uint32(8) == COUNT_LIMIT:
        n, kept = 0, 2
        for i in range(2, 2 + distinct):
            count = (short[s, i] >> np.uint32(8)) >> np.uint32(1)
            if count > 0:
                short[s, kept] = (count << np.uint32(8)) | (short[s, i] & np.uint32(255))
                n += count
                kept += 1
        distinct = kept - 2
    short[s, 1] = n | (np.uint32(distinct) << np.uint32(24))


@kernel(inline="always")
def _learn_full(counts, sums, s, byte):
    """Count `byte` in full slot s."""
    if counts[s, byte] == 0:
        sums[s, 1] += 1
    counts[s, byte] += 1
    sums[s, 0] += 1
    if counts[s, byte] == COUNT_LIMIT:
        n, distinct = 0, 0
        for b in range(256):
            counts[s, b] >>= 1
            n += counts[s, b]
            distinct += counts[s, b] > 0
        sums[s, 0], sums[s, 1] = n, distinct


@intrinsic
def prefetch(typingctx, array, i, j):
    """Ask the CPU to bring array[i, j] into cache; nothing else changes. A lookup in a table
    far larger than the cache then overlaps the work before it, or other lookups."""
    def codegen(context, builder, signature, args):
        view = context.make_array(signature.args[0])(context, builder, args[0])
        where = cgutils.get_item_pointer(context, builder, signature.args[0], view,
                                         [args[1], args[2]])
        byte = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
            ir.VoidType(), [byte, i32, i32, i32]), "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(where, byte), i32(0), i32(3), i32(1)])  # read, keep
        return context.get_dummy_value()
    return types.void(array, i, j), codegen


@kernel(inline="always")
def _slots(data, pos, view, orders, first_slot, hash_mask, slot, check):
    """Each order's slot for the byte at pos, and for a hashed one the check of its context,
    from one running hash over the bytes before pos."""
    h, direct, k = np.uint64(0x9E3779B97F4A7C15), np.int64(0), 0
    for j in range(len(orders)):
        while k < orders[j]:
            k += 1
            c = np.int64(data[pos - k]) if visible(pos - k, pos, view) else 0
            h = (h + np.uint64(c + 1)) * np.uint64(0x100000001B3)
            direct = direct * 256 + c
        if k <= FULL_ORDERS:
            slot[j] = first_slot[j] + direct
        else:
            hb = (h + np.uint64(k)) * np.uint64(0x2545F4914F6CDD1D)
            hb ^= hb >> np.uint64(29)
            slot[j] = first_slot[j] + np.int64(hb & np.uint64(hash_mask))
            check[j] = np.uint32((hb >> np.uint64(40)) | np.uint64(1))


@kernel(inline="always")
def _save_short(short, s, saved_short, saved):
    """Save short slot s whole, for `_restore`."""
    saved_short[saved[1], :SHORT_WORDS] = short[s]
    saved_short[saved[1], SHORT_WORDS] = s
    saved[1] += 1


@kernel(nogil=True)
def _code(data, start, stop, view, learn, orders, first_slot, hash_mask, counts, sums, short,
          weights, bayes, per_byte, keep_per_byte, saved_full, saved_sums, saved_short, saved):
    """Code data[start:stop], skipping held-out bytes outside the block being evaluated.

    Evaluating or relearning (view[4] != LEARNING), each slot is saved whole before it changes
    (full ones in saved_full and saved_sums, short ones in saved_short; saved[0] and saved[1]
    rows so far) for `_restore`. The weights learn while learning or coding a block
    adaptively, not relearning. `bayes`: the posterior mixture (`_bayes`), its hashed orders'
    slots in pairs. Returns (bits, bytes coded)."""
    n_orders = len(orders)
    slot = np.zeros(n_orders, dtype=np.int64)  # -1: a context the frozen model never saw
    check = np.zeros(n_orders, dtype=np.uint32)
    ahead_slot, ahead_check, ahead_for = np.zeros_like(slot), np.zeros_like(check), -1
    entry = np.zeros(n_orders, dtype=np.int64)  # a short slot's entry of the byte, or -1 (none)
    cell = np.zeros(n_orders, dtype=np.int64)  # the weight's cell, -1: none
    below, own, blended = np.zeros(n_orders), np.zeros(n_orders), np.zeros(n_orders)
    seen, counted = np.zeros(n_orders, dtype=np.int64), np.zeros(n_orders, dtype=np.int64)
    predicted = np.zeros(len(weights))  # a Bayes size's predictors' probabilities of the byte
    evaluating = view[4] != LEARNING
    tune = learn and view[4] != RELEARNING
    total, coded = 0.0, 0
    block_end = view[1] + (1 << view[2])
    for pos in range(start, stop):
        if learn and held_out(pos, view) and not view[1] <= pos < block_end:
            continue
        byte = np.int64(data[pos])
        # --- each order's slot (worked out, and its short slots fetched, a byte ahead) ---
        if ahead_for == pos:
            slot[:], check[:] = ahead_slot, ahead_check
        else:
            _slots(data, pos, view, orders, first_slot, hash_mask, slot, check)
        if pos + 1 < stop:
            _slots(data, pos + 1, view, orders, first_slot, hash_mask, ahead_slot, ahead_check)
            ahead_for = pos + 1
            for j in range(n_orders):
                if orders[j] > FULL_ORDERS:
                    prefetch(short, ahead_slot[j], 0)
        for j in range(n_orders):
            s = slot[j]
            if orders[j] <= FULL_ORDERS or short[s, 0] == check[j]:
                continue
            if bayes:  # the pair's other slot; a new context takes the less counted of the two
                if short[s ^ 1, 0] == check[j]:
                    slot[j] = s ^ 1
                    continue
                if short[s ^ 1, 1] & np.uint32(0xFFFFFF) < short[s, 1] & np.uint32(0xFFFFFF):
                    s = s ^ 1
                    slot[j] = s
            if not learn:
                slot[j] = -1
            else:  # another context held the slot: it starts afresh
                if evaluating:
                    _save_short(short, s, saved_short, saved)
                short[s, :] = 0
                short[s, 0] = check[j]
        # --- each order's observations, and its count of the byte ---
        for j in range(n_orders):
            s = slot[j]
            seen[j], counted[j] = 0, 0
            if s < 0:
                continue
            if orders[j] <= FULL_ORDERS:
                seen[j], counted[j] = np.int64(sums[s, 0]), np.int64(counts[s, byte])
            else:
                seen[j] = np.int64(short[s, 1] & np.uint32(0xFFFFFF))
                entry[j] = _short_entry(short, s, byte)
                counted[j] = np.int64(short[s, entry[j]] >> np.uint32(8)) if entry[j] >= 0 else 0
        if bayes:
            prob = _bayes(seen, counted, counts[first_slot[0], byte] > 0,
                          np.int64(sums[first_slot[0], 1]), weights, predicted)
        else:  # blend from the shortest order up
            prob = 1.0 / 256
            for j in range(n_orders):
                s = slot[j]
                cell[j] = -1
                n, count = seen[j], counted[j]
                if n == 0:
                    continue
                distinct = np.int64(sums[s, 1] if orders[j] <= FULL_ORDERS
                                    else short[s, 1] >> np.uint32(24))
                e = (j * OBSERVED_LEVELS + _level(n)) * DISTINCT_LEVELS \
                    + min(DISTINCT_LEVELS - 1, distinct * DISTINCT_LEVELS // (n + 1))
                cell[j] = e
                below[j], own[j] = prob, count / n
                prob = (1.0 - weights[e]) * own[j] + weights[e] * prob
                blended[j] = prob
        bits = -math.log2(prob)
        total += bits
        coded += 1
        if keep_per_byte:
            per_byte[pos - start] = bits
        if not learn:
            continue
        # --- learn: the weights, then the counts ---
        if bayes and tune:
            _update_posterior(weights, predicted, prob)
        for j in range(n_orders):
            s = slot[j]
            if tune and not bayes and cell[j] >= 0:  # a step down its order's gradient
                e = cell[j]
                w = weights[e]
                step = WEIGHT_RATE * (below[j] - own[j]) / blended[j] * w * (1.0 - w)
                weights[e] = min(max(w + step, WEIGHT_MIN), 1.0 - WEIGHT_MIN)
            if orders[j] <= FULL_ORDERS:
                if evaluating:
                    saved_full[saved[0]] = counts[s]
                    saved_sums[saved[0], 0], saved_sums[saved[0], 1] = sums[s, 0], sums[s, 1]
                    saved_sums[saved[0], 2] = s
                    saved[0] += 1
                _learn_full(counts, sums, s, byte)
            else:
                if evaluating:
                    _save_short(short, s, saved_short, saved)
                _learn_short(short, s, byte, entry[j])
    return total, coded


@kernel(inline="always")
def _bayes(seen, counted, known, alphabet, weights, predicted):
    """The posterior mixture's probability of a byte (`known`: order 0 has seen it; `alphabet`:
    the distinct bytes it has seen), each predictor's in `predicted`."""
    if alphabet == 0 or alphabet == 256:
        base = 1.0 / 256
    else:  # a byte never seen shares an escape that shrinks as the bytes seen grow
        escape = 1.0 / (seen[0] + 2)
        base = (1.0 - escape) / alphabet if known else escape / (256 - alphabet)
    prob, n_conc = 0.0, len(BAYES_CONCENTRATIONS)
    for j in range(len(seen)):
        for i in range(n_conc):
            a = BAYES_CONCENTRATIONS[i] * alphabet if alphabet > 0 else 1.0
            p = (counted[j] + a * base) / (seen[j] + a)
            predicted[j * n_conc + i] = p
            prob += weights[j * n_conc + i] * p
    predicted[-1] = 1.0 / 256  # the uniform code: new bytes after a run of few
    return prob + weights[-1] / 256


@kernel(inline="always")
def _update_posterior(weights, predicted, prob):
    """Bayes' rule on the mixture's weights after a byte each predictor gave `predicted`."""
    total = 0.0
    for m in range(len(predicted)):
        weights[m] = max(weights[m] * predicted[m] / prob, BAYES_FLOOR)
        total += weights[m]
    for m in range(len(predicted)):
        weights[m] /= total


@kernel(nogil=True)
def _restore(counts, sums, short, saved_full, saved_sums, saved_short, saved):
    """Put back the slots saved, newest first: the model is as it was before the block."""
    for n in range(saved[0] - 1, -1, -1):
        s = saved_sums[n, 2]
        counts[s] = saved_full[n]
        sums[s, 0], sums[s, 1] = saved_sums[n, 0], saved_sums[n, 1]
    for n in range(saved[1] - 1, -1, -1):
        s = saved_short[n, SHORT_WORDS]
        for w in range(SHORT_WORDS):
            short[s, w] = saved_short[n, w]
    saved[:] = 0


@kernel(nogil=True)
def _evaluate(data, seen, view, starts, warm, orders, first_slot, hash_mask, counts, sums, short,
              weights, bayes, saved_full, saved_sums, saved_short, saved):
    """Bits and bytes of each held-out block (first bytes `starts`) under the model after
    `seen` bytes, coded frozen and adaptively (`BlendingModel.evaluate`)."""
    block = 1 << view[2]
    frozen = np.zeros(len(starts))
    adaptive = np.zeros(len(starts))
    count = np.zeros(len(starts), dtype=np.int64)
    unused = np.zeros(1)
    state = (orders, first_slot, hash_mask, counts, sums, short, weights, bayes)
    yes, no = np.bool_(True), np.bool_(False)  # not literals (see holdout.LEARNING)
    for b in range(len(starts)):
        begin, end = starts[b], min(starts[b] + block, len(data))
        frame, relearn = block_views(view, begin)
        frozen[b], count[b] = _code(data, begin, end, frame, no, *state, unused, no,
                                    saved_full, saved_sums, saved_short, saved)
        kept_weights = weights.copy()
        warm_start, warm_stop = max(0, begin - warm), min(begin, seen)
        if warm_start < warm_stop:
            _code(data, warm_start, warm_stop, relearn, yes, *state, unused, no,
                  saved_full, saved_sums, saved_short, saved)
        adaptive[b], _ = _code(data, begin, end, frame, yes, *state, unused, no,
                               saved_full, saved_sums, saved_short, saved)
        _restore(counts, sums, short, saved_full, saved_sums, saved_short, saved)
        weights[:] = kept_weights
    return frozen, adaptive, count
