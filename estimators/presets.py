"""Named sweep configurations: which model sizes run and which budgets the curve reports."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """A budget ladder (FLOPs) and the model sizes (width, depth, context) that serve it.

    Each size gets a single pass capped by the top budget; where the data is too small for a
    rung (no pass spends half of it), the size that makes the most optimiser steps within it,
    this preset's or an included one's, makes a replay run for that rung (more epochs over the
    coded prefix). Each preset includes the runs of the one below it.

    Sizes keep context near 2x width at most, so attention's share of the work stays small and
    6*N*D (N with embeddings) is within 10% of the FLOPs the matmuls actually do."""

    name: str
    budgets: tuple[float, ...]
    sizes: tuple[tuple[int, int, int], ...]
    batch_tokens: int  # tokens per optimiser step once the batch has ramped up
    learning_rate: float  # Adam LR of embeddings, readout and norms, the same at every width
    hidden_learning_rate: float  # Adam LR of hidden matrices at the base width; muP scales it
    heldout_tokens: int  # cap on the held-out slice used for the final loss
    transfer_tokens: int  # target tokens coded when measuring transfer (a fixed small budget)
    # A smaller preset whose runs this one makes too (with that preset's settings), so that on
    # the same data and budget it never reports a longer code than the smaller one.
    includes: str | None = None
    max_replay_epochs: int = 32  # most epochs over the coded prefix per block (small data)
    # Most tokens a replay trains on at one block boundary (epochs x prefix): what bounds its
    # wall time. Standard's keeps files up to 1 MiB within 5 minutes: 18 epochs of 48x2 over
    # 512 KiB of source (the most 1e13 buys) took 343 s of a sweep, every family.
    max_replay_tokens: int = 6 << 20
    # Rungs above `budgets` for the count family alone: the ladder gets one where a count-family
    # size spends more than the rung below it (large data), and below that it would repeat
    # that rung. The preset's transformer runs serve `budgets` only.
    large_data_budgets: tuple[float, ...] = ()

    @property
    def all_budgets(self) -> tuple[float, ...]:
        """Every rung the preset may report: its budgets, then its large-data ones."""
        return self.budgets + self.large_data_budgets

    def with_included(self) -> list[Preset]:
        """This preset, then the one it includes, and so on down."""
        return [self] + (PRESETS[self.includes].with_included() if self.includes else [])


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        # quick is the CI preset: one transformer size. A 64x2 run was its longest lane (28 s of
        # 35 on 1 MiB, 2 cores) and never won its frontier: the count family does from 1e10 on.
        # 1e11 is about what one 48x2 pass over 256 KiB spends (1.5e11). From 14.1 MiB the
        # count family's largest size needs more than 1e11, and 1e12 joins for it; a 48x2 pass
        # to 1e12 (1 MiB: 28 s of a 30 s sweep on 2 cores) never won it. At 1e9 the count
        # family codes 100 MiB better than uniform (at 1e8 it does not): every rung buys
        # something from 256 KiB to 100 MiB.
        Preset("quick", budgets=(1e9, 1e10, 1e11), large_data_budgets=(1e12,),
               sizes=((48, 2, 128),),
               batch_tokens=4096, learning_rate=3e-2, hidden_learning_rate=2e-3, heldout_tokens=16384,
               transfer_tokens=65536, max_replay_epochs=0),  # quick stays one pass: small data would
        # otherwise spend the whole top rung replaying (6x the time); standard and deep replay
        Preset("standard", budgets=(1e10, 1e11, 1e12, 1e13),
               sizes=((128, 2, 256), (192, 3, 256)),
               batch_tokens=8192, learning_rate=3e-2, hidden_learning_rate=2e-3, heldout_tokens=65536,
               transfer_tokens=262144, includes="quick"),
        Preset("deep", budgets=(1e12, 1e13, 1e14, 1e15, 1e16),
               sizes=((256, 6, 256), (512, 8, 512), (768, 12, 768)),
               batch_tokens=65536, learning_rate=3e-2, hidden_learning_rate=2e-3, heldout_tokens=262144,
               transfer_tokens=1 << 20, includes="standard", max_replay_tokens=32 << 20),
    )
}

ESTIMATORS = ("prequential", "requential")
FORMATS_HELP = "bytes | text | jsonl:FIELD | csv:COLUMN | tokens"
