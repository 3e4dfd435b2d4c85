"""Scale-out benchmarks (issue 8), one command:

    .venv/bin/python bench/bench_scale.py claims [--jobs 10000] [--claimers 4]
    .venv/bin/python bench/bench_scale.py sweep [--mib 1] [--budget 1e11] [--seeds 4]

`claims` (bench/scale_claims.py): concurrent claimers on PostgreSQL (SKIP LOCKED) and SQLite; no
job claimed twice, claims per second. `sweep` (bench/scale_sweep.py): a 4-run sweep through the
local executor against Ray with two 1-CPU workers, as a wall-time ratio. With no argument, both.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_claims  # noqa: E402
import scale_sweep  # noqa: E402

if __name__ == "__main__":
    which, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("both", [])
    if which == "claims":
        sys.exit(scale_claims.main(rest))
    if which == "sweep":
        sys.exit(scale_sweep.main(["sweep", *rest]))
    if which == "both":
        sys.exit(scale_claims.main([]) or scale_sweep.main(["sweep"]))
    sys.exit(f"usage: {__doc__}")
