"""The built-in reference panel: target datasets every installation has, with no download.

Generated sources with known structure, plus real text read from what ships with Python:
its standard-library source (code) and the docstrings in it (English-like prose). Its compiled
extension modules (`machine_code`) are not a member; the fidelity laws use them.
"""
from __future__ import annotations

import ast
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from estimators import synthetic

PANEL_BYTES = 64 * 1024


def arithmetic(size: int, seed: int = 0) -> bytes:
    """Lines of correct sums and products, e.g. `417+36=453`."""
    rng = np.random.default_rng(seed)
    lines, total = [], 0
    while total < size:
        a, b = rng.integers(0, 1000, 2)
        op = "+*"[int(rng.integers(0, 2))]
        line = f"{a}{op}{b}={a + b if op == '+' else a * b}\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


_GRAMMAR = {
    "S": [["NP", "VP", "."]],
    "NP": [["the", "N"], ["a", "ADJ", "N"], ["the", "N", "that", "VP"]],
    "VP": [["V", "NP"], ["V"], ["V", "NP", "PP"]],
    "PP": [["with", "NP"], ["near", "NP"]],
    "N": [["cat"], ["dog"], ["model"], ["river"], ["teacher"], ["student"]],
    "ADJ": [["small"], ["quiet"], ["bright"]],
    "V": [["sees"], ["trains"], ["follows"], ["codes"]],
}


def toy_grammar(size: int, seed: int = 0) -> bytes:
    """Sentences from a small recursive context-free grammar."""
    rng = np.random.default_rng(seed)

    def expand(symbol: str, depth: int) -> list[str]:
        if symbol not in _GRAMMAR:
            return [symbol]
        options = _GRAMMAR[symbol] if depth < 4 else _GRAMMAR[symbol][:1]
        return [w for part in options[int(rng.integers(0, len(options)))]
                for w in expand(part, depth + 1)]

    out, total = [], 0
    while total < size:
        sentence = " ".join(expand("S", 0)).replace(" .", ".") + "\n"
        out.append(sentence)
        total += len(sentence)
    return "".join(out).encode()[:size]


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in root.glob("*.py"))


def python_source(size: int, seed: int = 0) -> bytes:
    """Python's own standard-library source, concatenated in name order."""
    out, total = [], 0
    for path in _stdlib_files():
        data = path.read_bytes()
        out.append(data)
        total += len(data)
        if total >= size:
            break
    return b"".join(out)[:size]


def machine_code(size: int, seed: int = 0) -> bytes:
    """Python's compiled extension modules (`lib-dynload/*.so`), concatenated in name order:
    machine code, symbol and string tables, the statistics of a binary upload."""
    root = Path(sysconfig.get_paths()["stdlib"]) / "lib-dynload"
    out, total = [], 0
    for path in sorted(root.glob("*.so")):
        out.append(path.read_bytes())
        total += len(out[-1])
        if total >= size:
            return b"".join(out)[:size]
    raise FileNotFoundError(f"{root} holds {total} bytes of extension modules; {size} wanted")


def docstrings(size: int, seed: int = 0) -> bytes:
    """Docstrings of the standard library: English prose about code."""
    out, total = [], 0
    for path in _stdlib_files():
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                text = ast.get_docstring(node)
                if text and len(text) > 40:
                    chunk = text.encode("utf-8") + b"\n\n"
                    out.append(chunk)
                    total += len(chunk)
        if total >= size:
            break
    return b"".join(out)[:size]


@dataclass(frozen=True)
class PanelMember:
    name: str
    description: str
    make: Callable[[int, int], bytes]  # (size, seed) -> bytes


PANEL: tuple[PanelMember, ...] = (
    PanelMember("markov-order1", "order-1 Markov chain over 16 symbols",
                lambda n, s: synthetic.MarkovSource(1, 16, seed=101).sample(n, s)),
    PanelMember("markov-order3", "order-3 Markov chain over 4 symbols",
                lambda n, s: synthetic.MarkovSource(3, 4, seed=103).sample(n, s)),
    PanelMember("eca-rule54", "elementary cellular automaton, rule 54 (class 4)",
                lambda n, s: synthetic.cellular_automaton(n, 54, seed=s)),
    PanelMember("eca-rule30", "elementary cellular automaton, rule 30 (looks random)",
                lambda n, s: synthetic.cellular_automaton(n, 30, seed=s)),
    PanelMember("arithmetic", "correct sums and products, one per line", arithmetic),
    PanelMember("toy-grammar", "sentences from a small recursive grammar", toy_grammar),
    PanelMember("python-stdlib", "Python standard-library source code", python_source),
    PanelMember("docstrings", "docstrings of the Python standard library", docstrings),
)


def build(size: int = PANEL_BYTES, seed: int = 0) -> dict[str, bytes]:
    """Every panel member's bytes, by name."""
    return {member.name: member.make(size, seed) for member in PANEL}
