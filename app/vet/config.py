"""Vet settings from the repository: `[tool.epiplex]` in pyproject.toml, or the top level of epiplex.toml.

Keys are the long option names of `epiplex vet` (dashes or underscores), so CI needs no long
command line; options given on the command line win. Relative paths are relative to the file.

    [tool.epiplex]
    paths = ["data/train"]
    min-epiplexity = 0.05     # bits/byte
    max-entropy = 7.0         # bits/byte
    report = ["epiplex-report.md", "epiplex-report.json"]
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.vet.vetting import VetInputError

# key -> (kind, attribute name on the parsed arguments)
KEYS: dict[str, tuple[str, str]] = {
    "paths": ("paths", "paths"),
    "server": ("str", "server"),
    "format": ("str", "format"),
    "preset": ("str", "preset"),
    "budget": ("floats", "budget"),
    "estimator": ("str", "estimator"),
    "seeds": ("int", "seeds"),
    "families": ("strs", "families"),
    "device": ("str", "device"),
    "threads": ("int", "threads"),
    "cache-dir": ("path", "cache_dir"),
    "timeout": ("float", "timeout"),
    "min-epiplexity": ("float", "min_epiplexity"),
    "max-entropy": ("float", "max_entropy"),
    "max-zstd-ratio": ("float", "max_zstd_ratio"),
    "max-drop": ("float", "max_drop"),
    "max-entropy-rise": ("float", "max_entropy_rise"),
    "baseline": ("path", "baseline"),
    "baseline-dataset": ("str", "baseline_dataset"),
    "report": ("paths", "report"),
    "junit": ("path", "junit"),
}


@dataclass
class VetConfig:
    """Settings read from a config file, keyed by argument name; `source` says which file."""

    values: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None


def find_config(start: Path) -> Path | None:
    """The nearest epiplex.toml or pyproject.toml from `start` upwards (stopping at a git root)."""
    for folder in (start, *start.parents):
        for name in ("epiplex.toml", "pyproject.toml"):
            if (folder / name).is_file():
                return folder / name
        if (folder / ".git").exists():
            return None
    return None


def load_config(explicit: str | Path | None = None, start: Path | None = None) -> VetConfig:
    """Read the explicit file, or the one `find_config` finds; an empty config when there is none."""
    path = Path(explicit) if explicit else find_config((start or Path.cwd()).resolve())
    if path is None:
        return VetConfig()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VetInputError(f"config file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise VetInputError(f"config file {path} is not readable: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise VetInputError(f"config file {path} is not valid TOML: {error}") from None
    if path.name == "pyproject.toml":
        table, where = document.get("tool", {}).get("epiplex", {}), f"[tool.epiplex] in {path}"
    else:
        table, where = document, str(path)
    if not isinstance(table, dict):
        raise VetInputError(f"{where} must be a table of settings")
    return VetConfig(_parse(table, where, path.parent), path)


def _parse(table: dict[str, Any], where: str, base: Path) -> dict[str, Any]:
    values = {}
    for raw_key, value in table.items():
        key = raw_key.replace("_", "-")
        if key not in KEYS:
            raise VetInputError(f"unknown key {raw_key!r} in {where}; known keys: {', '.join(KEYS)}")
        kind, attribute = KEYS[key]
        values[attribute] = _convert(kind, value, f"{raw_key!r} in {where}", base)
    return values


def _convert(kind: str, value: Any, what: str, base: Path) -> Any:
    def number(item: Any) -> float:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise VetInputError(f"{what} must be a number, got {item!r}")
        return float(item)

    if kind == "str":
        if not isinstance(value, str):
            raise VetInputError(f"{what} must be a string, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise VetInputError(f"{what} must be a whole number, got {value!r}")
        return value
    if kind == "float":
        return number(value)
    if kind == "floats":
        return [number(item) for item in (value if isinstance(value, list) else [value])]
    if kind == "strs":
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(item, str) for item in items):
            raise VetInputError(f"{what} must be a string or a list of strings, got {value!r}")
        return items
    if kind == "path":
        if not isinstance(value, str):
            raise VetInputError(f"{what} must be a path (a string), got {value!r}")
        return _relative_to(base, value)
    items = value if isinstance(value, list) else [value]  # paths
    if not items or not all(isinstance(item, str) for item in items):
        raise VetInputError(f"{what} must be a path or a list of paths, got {value!r}")
    return [_relative_to(base, item) for item in items]


def _relative_to(base: Path, value: str) -> str:
    """A path in the file, made usable from the current directory (kept short when it can be)."""
    if os.path.isabs(value) or base.resolve() == Path.cwd().resolve():
        return value
    return os.path.relpath(base / value)
