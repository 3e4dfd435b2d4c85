"""Planning a sweep: the budget ladder for the data, and the transformer runs that serve it.

Each model size gets one pass capped so that everything it spends, evaluations included, fits
the top budget; a rung that no pass spends half of gets a replay run (`PlannedRun`), and the
result warns about what the data is too small for.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from estimators import count_family, flops
from estimators.data import (MIN_SEQUENCES, DataFormatError, TokenData, batch_schedule,
                             heldout_sequences)
from estimators.frontier import FAMILIES
from estimators.presets import Preset

# A rung no run spends this share of is out of reach: the data is small for it, so the
# standard and deep presets replay for it and every preset warns when it is the top one
# (budgets are usually a decade apart, so within a factor of two a point is representative).
UNREACHABLE_FRACTION = 0.5


@dataclass(frozen=True)
class PlannedRun:
    """One training run of a sweep, before it runs: whose settings, what size, how far."""

    preset: Preset  # settings (batch, learning rates, held-out slice); an included preset's own
    size: tuple[int, int, int]  # width, depth, context
    cap: int  # training tokens: one pass over the data at most
    replay_epochs: int  # epochs over the coded prefix at each block boundary (0: one pass)
    budget_flops: float  # the budget it serves: everything it spends fits within it
    planned_flops: float  # what it spends if early stopping never cuts a replay short


@dataclass(frozen=True)
class _Size:
    """A model size a preset can train on the data, priced with that preset's settings."""

    preset: Preset
    size: tuple[int, int, int]  # width, depth, context
    usable: int  # training sequences: the rest are held out
    steps: int  # optimiser steps in one pass
    spend: Callable[..., float]  # (sequences, replay epochs=0) -> planned FLOPs


def _same_run(a: PlannedRun, b: PlannedRun) -> bool:
    """Whether two planned runs train the same way (they may serve different rungs)."""
    return (a.preset, a.size, a.cap, a.replay_epochs) == (b.preset, b.size, b.cap, b.replay_epochs)


def _reaches(runs: Sequence[PlannedRun], budget: float) -> bool:
    """Whether one of `runs` spends enough of `budget` that the rung is not out of reach."""
    return max((run.planned_flops for run in runs), default=0.0) >= budget * UNREACHABLE_FRACTION


def _largest(fits: Callable[[int], bool], most: int) -> int:
    """The largest k in [0, most] with fits(k), for `fits` true up to a point and false after."""
    low, high = 0, most
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low


class SweepPlan:
    """The rungs a sweep reports for the data (`budgets`), the transformer runs it makes for
    them (`runs`, those of the included smaller presets first) and its warnings."""

    def __init__(self, data: TokenData, preset: Preset, budgets: list[float], estimator: str,
                 families: Sequence[str] = FAMILIES):
        self.data, self.preset, self.estimator = data, preset, estimator
        self.families = tuple(families)
        self.custom_budgets = list(preset.all_budgets) != budgets
        self.warnings: list[str] = []
        self.budgets = budgets if self.custom_budgets else self._ladder(preset)
        self.runs: list[PlannedRun] = []
        if "transformer" in self.families:  # its warnings are about transformer runs
            self.runs = self._plan()
            self._unreachable_warning()

    def _plan(self) -> list[PlannedRun]:
        """The runs to make: those of the included smaller presets, then this preset's own
        (a run two presets plan alike is made once, for the smaller)."""
        plan: list[PlannedRun] = []
        for preset in reversed(self.preset.with_included()):
            own_ladder = preset is self.preset or self.custom_budgets
            own, reason = self._plan_preset(
                preset, self.budgets if own_ladder else self._ladder(preset))
            plan += [run for run in own if not any(_same_run(run, made) for made in plan)]
        if reason and not plan:  # this preset's own reason
            self.warnings.append(reason)
        return plan

    def _ladder(self, preset: Preset) -> list[float]:
        """A preset's rungs for this data: its budgets, then each of its large-data budgets
        where a count-family size, run for it, spends more than the rung below."""
        ladder = list(preset.budgets)
        if count_family.FAMILY not in self.families:
            return ladder
        width = self.data.token_bytes
        size = len(self.data.tokens) * width
        for budget in preset.large_data_budgets:
            stops = [count_family.checkpoint_stops(cfg, size, ladder + [budget], width)
                     for cfg in count_family.SIZES]
            if max((run[-1][1] for run in stops if run), default=0.0) > ladder[-1]:
                ladder.append(budget)
        return ladder

    def _transformer_ladder(self, preset: Preset, ladder: list[float]) -> list[float]:
        """The rungs of `ladder` that a preset's transformer runs serve: the preset's own
        budgets, not its large-data ones; budgets given are served as given."""
        if self.custom_budgets:
            return ladder
        return [b for b in ladder if b <= preset.budgets[-1]]

    def _sizes(self, preset: Preset) -> list[_Size]:
        """The sizes of `preset` the data has enough sequences for, priced with its settings."""
        from estimators import prequential, requential

        cost = (requential if self.estimator == "requential" else prequential).planned_flops
        sizes = []
        for width, depth, context in preset.sizes:
            sequences = (len(self.data.tokens) - 1) // context
            if sequences < MIN_SEQUENCES:
                continue
            n = flops.count_params(self.data.vocab_size, width, depth, context)
            held = heldout_sequences(sequences, context, preset.heldout_tokens)
            batch = max(1, preset.batch_tokens // context)

            def spend(count: int, epochs: int = 0, n=n, context=context, held=held,
                      batch=batch) -> float:  # this size's values, not the loop's last
                return cost(batch_schedule(count, batch), context, n, held, epochs)

            usable = sequences - held
            sizes.append(_Size(preset, (width, depth, context), usable,
                               len(batch_schedule(usable, batch)), spend))
        return sizes

    def _plan_preset(self, preset: Preset, ladder: list[float]) -> tuple[list[PlannedRun], str]:
        """One preset's runs for `ladder`: a pass per size capped so that everything it spends,
        evaluations included, fits the top budget; then, for each rung that no pass spends
        half of, the replay run that makes the most optimiser steps within it, of the sizes of
        this preset and those it includes (each with its own preset's settings). On small data
        a large size buys an epoch or two of a few dozen steps and learns less than a small
        one does with many more: on 256 KiB at 1e13, 192x3 coded an order-2 chain at 3.91 bits/byte
        and Python source at 3.50, 48x2 at 3.82 and 2.70."""
        ladder = self._transformer_ladder(preset, ladder)
        top, plan, sizes = ladder[-1], [], self._sizes(preset)
        trained = {size.size for size in sizes}
        for width, depth, context in preset.sizes:
            if (width, depth, context) not in trained:
                self.warnings.append(f"skipped the {width}x{depth} model: the data has fewer "
                                     f"than {MIN_SEQUENCES * context + 1} tokens it needs")
        for size in sizes:
            count = _largest(lambda c: size.spend(c) <= top, size.usable)
            if count:  # else too large for every budget
                plan.append(PlannedRun(preset, size.size, count * size.size[2], 0, top,
                                       size.spend(count)))
        if not sizes:  # too few tokens for every size: see check_enough_data
            return plan, ""
        if not plan:
            cheapest = min(size.spend(1) for size in sizes)
            return plan, (
                f"the largest budget ({top:.2g} FLOPs) is below the cheapest run of the preset "
                f"({cheapest:.2g} FLOPs to train one batch and evaluate): the result is the "
                "untrained model's code. Raise the budget.")
        if self.estimator == "prequential" and preset.max_replay_epochs:
            passes = list(plan)
            candidates = [size for included in reversed(preset.with_included()[1:])
                          for size in self._sizes(included)] + sizes
            for budget in ladder:
                if _reaches(passes, budget):
                    continue  # not small data for this rung: a pass already spends most of it
                steps, replay = 0, None
                for size in candidates:  # by preset, smaller first: a tie goes to the larger
                    most = min(preset.max_replay_epochs,
                               preset.max_replay_tokens // (size.usable * size.size[2]))
                    epochs = _largest(lambda e: size.spend(size.usable, e) <= budget, most)
                    if epochs and epochs * size.steps >= steps:
                        steps, replay = epochs * size.steps, PlannedRun(
                            size.preset, size.size, size.usable * size.size[2], epochs, budget,
                            size.spend(size.usable, epochs))
                if replay and not any(_same_run(replay, run) for run in plan):
                    plan.append(replay)
        return plan, ""

    def _unreachable_warning(self) -> None:
        """Warn when no run of the preset can spend most of the top budget it serves."""
        top = self._transformer_ladder(self.preset, self.budgets)[-1]
        if self.runs and not _reaches(self.runs, top):
            spent = max(r.planned_flops for r in self.runs)
            replay = (f"one pass, or a replay of at most {self.preset.max_replay_epochs} epochs "
                      f"and {self.preset.max_replay_tokens:,} tokens a block boundary"
                      if self.preset.max_replay_epochs else
                      f"one pass: the {self.preset.name} preset does not replay small data, "
                      "the standard and deep presets do")
            self.warnings.append(
                f"data too small for the budget: the most a planned run spends is {spent:.2g} "
                f"FLOPs ({replay}), below the {top:.2g} asked, so the curve is flat beyond "
                "that. Add data or lower the budget.")


def check_enough_data(data: TokenData, preset: Preset, families: Sequence[str]) -> None:
    """Raise DataFormatError saying what to give when no family in use can learn from the
    data: the transformer needs a few sequences of the shortest context among the sizes of
    the preset and those it includes, the count family a stratum of held-out blocks
    (`count_family.MIN_BYTES`)."""
    shortest = min(context for preset in preset.with_included()
                   for _, _, context in preset.sizes)
    needs = {"transformer": MIN_SEQUENCES * shortest + 1,
             count_family.FAMILY: -(-count_family.MIN_BYTES // data.token_bytes)}
    needs = {family: needs[family] for family in families}
    if any(len(data.tokens) >= need for need in needs.values()):
        return  # the per-size warnings say why the transformer did not run, if it did not
    least = min(needs.values())
    raise DataFormatError(
        f"the dataset is too small to train any model of the preset: give at least {least} "
        "tokens" + (f" ({', '.join(f'{family} {need}' for family, need in needs.items())})"
                    if len(needs) > 1 else ""))
