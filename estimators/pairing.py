"""The paired estimate of the count family's held-out loss.

S and H of a count-family run hinge on L, the final model's loss per byte over the whole data,
which is measured on a few held-out blocks (one in each stratum of `Holdout.every` blocks).
Which blocks those are moved L by its standard error: on text, 0.08-0.12 bits/byte at 256 KiB
to 1 MiB, as large as S itself; on a Markov chain, 2% of the rate. Yet the online pass codes
every training block, and it can code each held-out block the same way as it reaches it
(`code_held_out`, then forgotten). A block that the online code finds harder than its
stratum, the final model finds harder too; so each held-out block's loss is corrected by that
difference, times the slope of the one on the other across the blocks (the regression
estimator of survey sampling):

    L_b' = L_b - slope * (online_b - online_stratum(b))

where online_stratum(b) is the online code of the whole stratum, the block's own bytes counted
in, as the estimator takes the mean of the whole population: that estimates the final model's
loss over the stratum, which H takes. S subtracts the final model's loss over the training
bytes from their online code, and for it the block is compared with the training bytes alone.

Where the held-out block falls in its stratum is drawn at random, so the difference has mean
zero: the correction removes noise and adds none on average. The slope is fitted, and kept in
[0, 1]: where the final model's loss does not follow the online code (the first copy of data
repeated later costs the online code 8 bits/byte and the final model nothing) it is near 0 and
nothing changes. Gaps are clipped at `GAP_CAP` times their median size: one far beyond the
rest is learning, unless the final model codes the block as the online code did (`corrected`
says when). In the first stratum the online code falls steeply while it learns, and against
the stratum's mean a block's gap measured where the block lies more than what it holds (an
order-1 chain over 16 symbols, 32 KiB: 0.16-0.23 bits/byte below its stratum beyond what the
true probabilities say). So that block is compared with the trend of the online code over the
training blocks of the first `TREND_STRATA` strata, fitted against the log of where each lies
(`_trend_at`). Over 78 runs on Markov chains of 256 KiB, that block's corrected loss erred
from what the final model codes its stratum in by 0.08 of it (root mean square) against the
trend, 0.17 against the stratum's mean, and 0.19 against the two blocks to either side of it,
as it was compared before: too few bytes where a chain is nearly deterministic (1 KiB blocks
of 20 bits each; `docs/count-family.md`).

Measured against what the final model codes 1 MiB more of a chain in (`bench/bench_pairing.py
--samples 20`): the error of L has a spread of 0.011 bits/byte where it was 0.030 uncorrected
(32 KiB of that order-1 chain, `cm-order1`), and 0.003 where it was 0.010 (256 KiB of an order-1
chain over 4 symbols, `blend-order4`).
"""
from __future__ import annotations

import numpy as np

from estimators.holdout import Holdout

MIN_PAIRS = 4  # held-out blocks with a correction needed to fit the slope
# Training bytes just after a held-out block that a stratum's online figure leaves out: the
# pass skips the block without reading it, so their contexts are cut. The first 64 cost
# 0.08-0.10 bits/byte more than the rest on random words (0.02-0.09 on an order-2 chain), and
# counted in, they set every stratum's figure above its held-out block's, pushing L up by
# about 0.0015 bits/byte (0.3% on words, 2% of a chain's rate near 0.07).
RECOVERY = 64
GAP_CAP = 3.0  # gaps are clipped at this many times their median size (see `corrected`)
# The first stratum's block is compared with the trend of the online code over this many strata.
TREND_STRATA = 2


class PairedLoss:
    """Online bits and bytes of each stratum's training bytes and of each held-out block, as
    the pass codes them, and the held-out losses they correct."""

    def __init__(self, holdout: Holdout, size: int):
        self.size = size
        self.stratum = holdout.every << holdout.shift  # bytes of a stratum
        self.block_size = 1 << holdout.shift
        self.starts = holdout.block_starts(size)
        self.block_bytes = np.minimum(self.starts + self.block_size, size) - self.starts
        self.training = np.zeros((-(-size // self.stratum), 2))  # online bits, bytes
        self.paired = np.zeros((len(self.starts), 2))  # online bits, bytes of each block
        early = min(size, TREND_STRATA * self.stratum)
        self.early = np.zeros((-(-early // self.block_size), 2))  # online bits, bytes: each block
        self.edges = np.unique(np.concatenate((  # where a stretch must stop (`next_stop`)
            self.starts, self.starts + self.block_size + RECOVERY,
            np.arange(0, early, self.block_size))))

    def next_stop(self, position: int) -> int:
        """Where a stretch of the pass from `position` ends: the next stratum, held-out block,
        end of the `RECOVERY` bytes after a block, or block of the first `TREND_STRATA`. So
        each stretch lies in one stratum, a block is paired first, and where a stretch counts
        does not depend on where the pass was cut into stretches (progress ticks, budgets)."""
        stop = min((position // self.stratum + 1) * self.stratum, self.size)
        later = int(np.searchsorted(self.edges, position, side="right"))
        return int(min(stop, self.edges[later])) if later < len(self.edges) else stop

    def _after_block(self, position: int) -> bool:
        """Whether `position` lies in a held-out block or in the `RECOVERY` bytes after it."""
        index = int(np.searchsorted(self.starts, position, side="right")) - 1
        return index >= 0 and position < self.starts[index] + self.block_size + RECOVERY

    def _block_at(self, position: int) -> int | None:
        index = int(np.searchsorted(self.starts, position))
        return index if index < len(self.starts) and self.starts[index] == position else None

    def held_out_at(self, position: int) -> int | None:
        """The held-out block that starts at `position`, when it has not been paired yet."""
        index = self._block_at(position)
        return index if index is not None and self.paired[index, 1] == 0 else None

    def paired_bytes_before(self, stop: int) -> int:
        """Bytes the pass pairs before reaching `stop`: every held-out block begun before it."""
        return int(self.block_bytes[:np.searchsorted(self.starts, stop)].sum())

    def add_training(self, position: int, bits: float, count: int) -> None:
        """Online bits and bytes of a stretch of the pass from `position` (`next_stop`); a
        stretch over a held-out block, or the bytes just after it, counts in no stratum's
        figure."""
        if not self._after_block(position):
            self.training[position // self.stratum] += (bits, count)
            if position // self.block_size < len(self.early):
                self.early[position // self.block_size] += (bits, count)

    def add_paired(self, index: int, bits: float, count: int) -> None:
        self.paired[index] = (bits, count)

    def online_bits(self) -> np.ndarray:
        """Each held-out block's bits as the pass coded it standing just before it; NaN where
        the pass has not reached it (`holdout.mixed_code`'s online code)."""
        return np.where(self.paired[:, 1] > 0, self.paired[:, 0], np.nan)

    def corrected(self, bits: np.ndarray, count: np.ndarray, position: int,
                  whole: bool = True) -> tuple[np.ndarray, float]:
        """Each held-out block's bits (the final model's, after the pass reached `position`)
        corrected as the module says, and the slope used (0: no correction): the final model's
        loss over its `whole` stratum (H), or over the stratum's training bytes alone (what S
        subtracts from their online code). A block is corrected once the pass has coded its
        whole stratum; none goes below zero bits.

        The two differ where the draw was unbalanced: 1 KiB random blocks alternating with
        zero ones, 4 random among the 16 held out, have training bytes 52% random. One
        correction for both, against the training bytes, gave H = 4.149 bits/byte where the
        data costs 4.0; against the whole stratum, S = 0.14 where there is no structure."""
        stratum = self.starts // self.stratum
        ends = np.minimum((stratum + 1) * self.stratum, self.size)
        train_bits, train_bytes = self.training[stratum].T
        pairs = (stratum > 0) & (ends <= position) & (self.paired[:, 1] > 0) & (train_bytes > 0)
        if pairs.sum() < MIN_PAIRS:
            return bits, 0.0
        paired = self.paired[:, 0] / np.maximum(self.paired[:, 1], 1)  # each block, online
        final = bits / np.maximum(count, 1)
        first_trend = (self._trend_at(self.starts[0] + self.block_size / 2)
                       if 0 < self.starts[0] < self.stratum <= position and self.paired[0, 1] > 0
                       else None)

        def against(with_own: bool) -> tuple[np.ndarray, np.ndarray]:
            """Each stratum's online code, the block's own counted in or not, and each block's
            gap to it."""
            own = pairs & with_own
            online = ((train_bits + own * self.paired[:, 0])
                      / np.maximum(train_bytes + own * self.paired[:, 1], 1))
            gap = np.zeros(len(bits))
            gap[pairs] = paired[pairs] - online[pairs]
            if first_trend is not None:
                gap[0] = paired[0] - first_trend
            return online, gap
        online, gap = against(whole)
        # Which blocks are far harder or easier than their strata (below) is judged once, against
        # the whole stratum (as H takes it), for both corrections. Judged apart, a block of real
        # CSV files 0.42 bits/byte easier than its stratum's training bytes was corrected in full
        # for S and clipped for H (its own bytes, counted in, bring the stratum 0.026 nearer), and
        # S + H of four sizes came out 0.015-0.018 bits/byte under what either judgement gives.
        judged_online, judged_gap = (online, gap) if whole else against(True)
        judged = np.median(np.abs(judged_gap[pairs]))
        # A gap far beyond the others' is learning, not a harder block: the stratum after a
        # random pattern's first period codes, online, the held-out block of the first that it
        # never learned (0.54 bits/byte more than its own held-out block), and corrected by
        # that, H of a pattern repeated 16 times came out 0.036 where it is 0.
        typical = np.median(np.abs(gap[pairs]))
        # Learning only ever raises the online code, so a block far harder than its stratum
        # that the final model finds as hard as the online code did is a harder block, not
        # learning: one where random bytes give way to text mid-stratum. Clipped like the
        # rest, it priced its stratum as wholly random (H 0.08 bits/byte over on 43 KiB). A
        # chain that is nearly deterministic has bursts of rare symbols: an order-3 chain over
        # 2 symbols read H 84% above its oracle while only gaps 10 times the median were kept.
        harder = ((judged_gap > GAP_CAP * judged)
                  & (np.abs(final - paired) <= judged_gap / 2))
        # A block far easier than its stratum is an easier block where the final model finds it
        # as easy as the online code did and the stratum's online code is near what the final
        # model codes blocks in (`level`), not raised by learning: the stratum after a random
        # pattern's first period pays to learn a copy of that period's held-out block, and its
        # own block is no easier than the rest of it. Clipped, two blocks of runs of likely
        # symbols in an order-3 chain over 4 (0.12 bits/byte under their strata) left
        # L = 1.1616, 1.0% under the rate and under the sample's oracle, 1.1705; now 1.1696.
        level = np.median(final[pairs])
        easier = ((judged_gap < -GAP_CAP * judged) & (np.abs(final - paired) <= -judged_gap / 2)
                  & (np.abs(judged_online - level) <= -judged_gap / 2))
        gap = np.where(harder | easier, gap, np.clip(gap, -GAP_CAP * typical, GAP_CAP * typical))
        # the final model's loss against its stratum's online code, so that what sets strata
        # apart does not blur the slope
        above = final - online
        spread = gap[pairs].var()
        if spread <= 0:
            return bits, 0.0
        slope = float(np.clip(np.cov(gap[pairs], above[pairs], bias=True)[0, 1] / spread, 0, 1))
        return np.maximum(bits - slope * gap * count, 0.0), slope

    def _trend_at(self, centre: float) -> float | None:
        """The online code, bits per byte, that the training blocks of the first `TREND_STRATA`
        strata coded so far put at `centre`: a line through their bits per byte against the
        log of where each lies, each weighed by its bytes. None before `MIN_PAIRS` are coded."""
        bits, count = self.early.T
        coded = np.flatnonzero(count > 0)
        if len(coded) < MIN_PAIRS:
            return None
        where = np.log2((coded + 0.5) * self.block_size)
        slope, level = np.polyfit(where, bits[coded] / count[coded], 1, w=np.sqrt(count[coded]))
        return float(level + slope * np.log2(centre))
