"""Pool (compute, S, H) points from every run of every observer family and read S_T and H_T
off the best code within T: MDL_T is a minimum over all programs that run within T, so the
frontier does not care which family a point came from."""
from __future__ import annotations

import math
from dataclasses import dataclass


# Observer families the frontier pools (estimators/sweep.py runs them).
FAMILIES = ("transformer", "context-mixing")
UNIFORM = "uniform"  # the untrained code: no family's, free, always a candidate
AHEAD_SIGMAS = 2.0  # standard errors above its estimate at which data not yet learned is priced


def check_families(families) -> list[str]:
    """The families asked for, in order, or every family; ValueError naming the choices."""
    chosen = list(FAMILIES) if families is None else list(dict.fromkeys(families))
    unknown = [f for f in chosen if f not in FAMILIES]
    if unknown or not chosen:
        raise ValueError(f"unknown observer famil{'ies' if len(unknown) > 1 else 'y'} "
                         f"{', '.join(map(repr, unknown)) or '(none given)'}: use one or more "
                         f"of {', '.join(FAMILIES)}")
    return chosen


@dataclass(frozen=True)
class Point:
    compute_flops: float
    epiplexity_bits: float
    entropy_bits: float
    run: int  # index of the run it came from (of any family); -1 for the untrained model
    stderr_bits: float = 0.0  # noise in S from the held-out estimate of the final loss
    entropy_stderr_bits: float = 0.0  # noise in H, from the same estimate

    @property
    def total_bits(self) -> float:
        return self.epiplexity_bits + self.entropy_bits


def price_ahead(loss: float, stderr: float, uniform: float, floor: float = 0.0) -> float:
    """Bits per token at which a checkpoint prices the data it has not learned from yet: its
    held-out estimate plus `AHEAD_SIGMAS` standard errors, at least `floor`, at most the
    uniform code (or the estimate, where that is higher).

    The frontier takes the lowest S+H over many checkpoints, and an early one estimates from
    a small sample: priced at its mean alone, the lucky draw won. On 256 KiB of 1 KiB random
    blocks alternating with zero ones (4 bits/byte whatever codes them), a transformer 2% into
    its pass drew 3.75 bits/token (standard error 0.61) and the headline at quick's top
    budget read 3.768 bits/byte."""
    return min(max(loss + AHEAD_SIGMAS * stderr, floor), max(uniform, loss))


def untrained_point(dataset_tokens: int, vocab_size: int) -> Point:
    """The model every learner starts from: uniform over the vocabulary, free to run.

    It belongs in the minimum: a learner that cannot beat it has found no structure."""
    return Point(0.0, 0.0, dataset_tokens * math.log2(vocab_size), -1)


def best_within(points: list[Point], budget: float) -> Point:
    """The two-part-code minimiser among points that cost at most `budget` FLOPs.

    MDL_T = min(S + H) over models trainable within T, so it never rises with T."""
    affordable = [p for p in points if p.compute_flops <= budget]
    return min(affordable, key=lambda p: (p.total_bits, p.compute_flops))


def lower_hull(points: list[Point]) -> list[Point]:
    """Vertices of the lower convex hull of total code against log compute (the frontier
    plotted in the paper), from the cheapest point to the best code."""
    pts = sorted(points, key=lambda p: (p.compute_flops, p.total_bits))
    hull: list[Point] = []
    x = lambda p: math.log10(max(p.compute_flops, 1.0))  # noqa: E731
    for p in pts:
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (x(b) - x(a)) * (p.total_bits - a.total_bits) - \
                    (b.total_bits - a.total_bits) * (x(p) - x(a))
            if cross > 0:
                break
            hull.pop()
        hull.append(p)
    best = min(range(len(hull)), key=lambda i: hull[i].total_bits)
    return hull[:best + 1]
