"""What the pages draw, built from a result or a ranking: curves per observer family, a scatter, a heatmap."""
from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from app.api.schemas import DatasetTransferOut, LeaderboardPage
from app.leaderboard.service import LeaderboardQuery, family_curves
from app.web import units
from app.web.charts import Dot, Level, Series, curve_chart, scatter_chart


@dataclass
class DatasetCharts:
    epiplexity: Markup
    entropy: Markup
    families: list[str]


def _series(family: str, curve: list[dict], key: str, size: int) -> Series:
    points = [(p["budget_flops"], p[f"{key}_per_byte"]) for p in curve if p["budget_flops"] > 0]
    band = [(p["budget_flops"], p["ci95"][key]["low"] / size, p["ci95"][key]["high"] / size)
            for p in curve if p["budget_flops"] > 0 and p.get("ci95") and size]
    return Series(name=family, points=points, band=band, family=family)


def dataset_charts(result: dict | None) -> DatasetCharts | None:
    """S_T and H_T per byte against FLOPs, a line per observer family; zstd and lzma beside H_T."""
    if not result:
        return None
    curves = family_curves(result)
    size = (result.get("dataset") or {}).get("bytes") or 0
    baselines = result.get("baselines") or {}
    levels = [Level(f"{name} {baselines[key]:.3f} bits/byte", baselines[key])
              for name, key in (("zstd -19", "zstd_bits_per_byte"), ("lzma", "lzma_bits_per_byte"))
              if baselines.get(key) is not None]
    seeds = len(result.get("seeds") or [])
    note = f", 95% bands over {seeds} seeds" if seeds > 1 else ""
    return DatasetCharts(
        epiplexity=curve_chart(f"Epiplexity S_T per byte against compute, one line per observer family{note}",
                               [_series(f, c, "epiplexity_bits", size) for f, c in curves.items()],
                               "S_T (bits/byte)"),
        entropy=curve_chart(f"Time-bounded entropy H_T per byte against compute, with zstd and lzma{note}",
                            [_series(f, c, "entropy_bits", size) for f, c in curves.items()],
                            "H_T (bits/byte)", levels),
        families=list(curves))


def leaderboard_scatter(board: LeaderboardPage, query: LeaderboardQuery) -> Markup:
    where = units.flops(query.budget) if query.budget else "each result's largest budget"
    dots = [Dot(e.name, e.epiplexity_bits_per_byte, e.entropy_bits_per_byte, f"/datasets/{e.dataset_id}")
            for e in board.items]
    return scatter_chart(f"S against H per dataset at {where}", dots, "S_T (bits/byte)", "H_T (bits/byte)")


@dataclass
class TransferCell:
    target_name: str
    target_dataset_id: str
    value: float | None
    measured: bool
    colour: str  # a background for the heatmap: blue helps, red hurts, pale is near zero
    note: str | None = None


def _colour(value: float | None, scale: float) -> str:
    if value is None or scale <= 0:
        return "transparent"
    strength = min(1.0, abs(value) / scale)
    hue = 210 if value > 0 else 5
    return f"hsla({hue}, 75%, 50%, {0.12 + 0.6 * strength:.2f})"


def transfer_cells(report: DatasetTransferOut) -> list[TransferCell]:
    """Measured and predicted transfer to each target, coloured on one scale (a heatmap row)."""
    cells = [TransferCell(m.target_name, m.target_dataset_id, m.transfer_bits_per_byte, True, "")
             for m in report.measured]
    cells += [TransferCell(p.target_name, p.target_dataset_id, p.predicted_transfer_bits_per_byte, False, "", p.note)
              for p in report.predicted]
    scale = max((abs(c.value) for c in cells if c.value is not None), default=0.0)
    for cell in cells:
        cell.colour = _colour(cell.value, scale) if len(cells) > 1 else "transparent"
    return cells
