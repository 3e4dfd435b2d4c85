"""Charts drawn on the server as inline SVG: curves against FLOPs (log axis) and a scatter.

No script and no asset: the page arrives with its figures drawn, readable without JavaScript,
and each mark carries a <title> so a pointer or a screen reader can name it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 44
PALETTE = 8  # series colours come from the stylesheet: .series-0 ... .series-7


@dataclass
class Series:
    """One line: (x, y) points, an optional (x, low, high) band, and what it is called."""

    name: str
    points: list[tuple[float, float]]
    band: list[tuple[float, float, float]] = field(default_factory=list)
    family: str | None = None  # an observer family's curve (the browser tests count them)


@dataclass
class Level:
    """A horizontal reference line across the whole chart (zstd, lzma)."""

    name: str
    y: float


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round linear ticks covering [low, high]."""
    span = (high - low) or 1.0
    raw = span / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if raw <= m * step)
    start = math.floor(low / step) * step
    return [round(start + i * step, 10) for i in range(int((high - start) / step) + 2) if start + i * step <= high + 1e-9]


class _Frame:
    """Maps data to pixels; x on a log10 axis when `log_x`."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float], log_x: bool) -> None:
        self.log_x = log_x
        fx = math.log10 if log_x else float
        self.x0, self.x1 = fx(x_range[0]), fx(x_range[1])
        if self.x0 == self.x1:
            self.x0, self.x1 = self.x0 - 0.5, self.x1 + 0.5
        self.y0, self.y1 = y_range if y_range[1] > y_range[0] else (y_range[0], y_range[0] + 1)

    def x(self, value: float) -> float:
        v = math.log10(value) if self.log_x else value
        return LEFT + (v - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return HEIGHT - BOTTOM - (value - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)


def _axes(frame: _Frame, x_label: str, y_label: str, x_ticks: list[float], y_ticks: list[float],
          x_text) -> list[str]:
    out = [f'<line class="axis" x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}"/>',
           f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}"/>']
    for t in y_ticks:
        y = frame.y(t)
        out.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
                   f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{t:g}</text>')
    for t in x_ticks:
        x = frame.x(t)
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}"/>'
                   f'<text class="tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                   f'{escape(x_text(t))}</text>')
    out.append(f'<text class="label" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 6}" '
               f'text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text class="label" transform="translate(14 {(TOP + HEIGHT - BOTTOM) / 2}) rotate(-90)" '
               f'text-anchor="middle">{escape(y_label)}</text>')
    return out


def _svg(title: str, body: list[str], css_class: str) -> Markup:
    return Markup(f'<svg class="chart {css_class}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
                  f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet"><title>{escape(title)}</title>'
                  + "".join(body) + "</svg>")


def _power_of_ten(value: float) -> str:
    return f"1e{round(math.log10(value))}"


def curve_chart(title: str, series: list[Series], y_label: str, levels: list[Level] = (),
                x_label: str = "compute budget (FLOPs, log scale)") -> Markup:
    """Lines against FLOPs on a log axis, with optional bands and horizontal reference levels."""
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points] + [v for s in series for _, lo, hi in s.band for v in (lo, hi)]
    ys += [level.y for level in levels]
    if not xs:
        return Markup('<p class="empty">No curve yet.</p>')
    low_x, high_x = min(xs), max(xs)
    top = max(ys) * 1.08 if max(ys) > 0 else 1.0
    frame = _Frame((low_x, high_x), (min(0.0, min(ys)), top), log_x=True)
    decades = range(math.floor(math.log10(low_x)), math.ceil(math.log10(high_x)) + 1)
    x_ticks = [10.0 ** d for d in decades if low_x * 0.999 <= 10.0 ** d <= high_x * 1.001]
    body = _axes(frame, x_label, y_label, x_ticks, _ticks(frame.y0, top), _power_of_ten)
    for i, level in enumerate(levels):
        y = frame.y(level.y)
        # Alternate ends, so two close levels (zstd and lzma often are) keep readable labels.
        label_x, anchor = (WIDTH - RIGHT - 4, "end") if i % 2 == 0 else (LEFT + 4, "start")
        body.append(f'<g class="level level-{i}"><title>{escape(level.name)}: {level.y:.4f} bits/byte</title>'
                    f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
                    f'<text x="{label_x:.0f}" y="{y - 4:.1f}" text-anchor="{anchor}">{escape(level.name)}</text></g>')
    for i, s in enumerate(series):
        colour = f"series-{i % PALETTE}"
        if s.band:
            upper = [f"{frame.x(x):.1f},{frame.y(hi):.1f}" for x, _, hi in s.band]
            lower = [f"{frame.x(x):.1f},{frame.y(lo):.1f}" for x, lo, _ in reversed(s.band)]
            body.append(f'<polygon class="band {colour}" points="{" ".join(upper + lower)}">'
                        f'<title>{escape(s.name)}: 95% interval over seeds</title></polygon>')
        path = " ".join(f"{'M' if j == 0 else 'L'}{frame.x(x):.1f},{frame.y(y):.1f}" for j, (x, y) in enumerate(s.points))
        family = f' data-family="{escape(s.family)}"' if s.family else ""
        body.append(f'<path class="line {colour}"{family} d="{path}"><title>{escape(s.name)}</title></path>')
        body += [f'<circle class="dot {colour}" cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="3">'
                 f'<title>{escape(s.name)}: {y:.4f} bits/byte at {_power_of_ten(x) if x > 0 else x} FLOPs</title></circle>'
                 for x, y in s.points]
    return _svg(title, body, "curves")


@dataclass
class Dot:
    label: str
    x: float
    y: float
    href: str


def scatter_chart(title: str, dots: list[Dot], x_label: str, y_label: str) -> Markup:
    """Labelled points, each a link (to its dataset's page)."""
    if not dots:
        return Markup('<p class="empty">No results to plot.</p>')
    xs, ys = [d.x for d in dots], [d.y for d in dots]
    x_top = max(xs) * 1.1 if max(xs) > 0 else 1.0
    y_top = max(ys) * 1.1 if max(ys) > 0 else 1.0
    frame = _Frame((0.0, x_top), (0.0, y_top), log_x=False)
    body = _axes(frame, x_label, y_label, _ticks(0.0, x_top), _ticks(0.0, y_top), lambda t: f"{t:g}")
    labelled = len(dots) <= 30  # beyond that, names would cover each other; each dot keeps its <title>
    for d in dots:
        label = (f'<text class="dot-label" x="{frame.x(d.x) + 7:.1f}" y="{frame.y(d.y) - 6:.1f}">'
                 f'{escape(d.label[:24])}</text>') if labelled else ""
        body.append(f'<a href="{escape(d.href)}"><circle class="dot point" cx="{frame.x(d.x):.1f}" '
                    f'cy="{frame.y(d.y):.1f}" r="5"><title>{escape(d.label)}: S {d.x:.4f} bits/byte, '
                    f'H {d.y:.4f} bits/byte</title></circle>{label}</a>')
    return _svg(title, body, "scatter")
