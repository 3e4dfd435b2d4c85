"""Every module of app/ and estimators/ imports on its own, as a spawned worker or a Ray task would.

A module that imports only because something else happened to import first (an import cycle)
fails here, not in production. Each module is imported in a process of its own that has loaded
none of our modules: a driver interpreter preloads the heavy third-party libraries once, then
forks a child per module (our modules are what is under test; torch and the web stack are not).
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

DRIVER = textwrap.dedent('''
    import importlib, json, os, sys, traceback
    from pathlib import Path

    def modules():
        # Found on disk, not by pkgutil.walk_packages: that imports every package it walks.
        names = []
        for package in ("app", "estimators"):
            for file in sorted(Path(package).rglob("*.py")):
                parts = file.with_suffix("").parts
                in_packages = all((Path(*parts[:i]) / "__init__.py").exists() for i in range(1, len(parts)))
                if in_packages and parts[-1] != "__main__":  # a __main__ runs a CLI on import
                    names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        return sorted(names)

    for library in ("torch", "numpy", "fastapi", "sqlalchemy", "alembic", "pydantic", "pydantic_settings",
                    "httpx", "zstandard", "prometheus_client", "starlette"):
        try:
            importlib.import_module(library)
        except ImportError:
            pass
    names = modules()
    assert not [m for m in sys.modules if m.split(".")[0] in ("app", "estimators")]
    failures = {}
    for name in names:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                importlib.import_module(name)
                code = 0
            except BaseException:
                os.write(write, traceback.format_exc()[-3000:].encode())
                code = 1
            os._exit(code)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            error = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
        if status != 0:
            failures[name] = error or f"exit status {status}"
    print(json.dumps({"modules": names, "failures": failures}))
''')


def _run_driver() -> dict:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", DRIVER], capture_output=True, text=True, timeout=300, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_module_imports_in_a_process_that_loaded_none_of_ours():
    report = _run_driver()
    # Alembic's env.py and revisions run only inside Alembic, so app/core/migrations is no package.
    assert {"app.jobs.worker", "app.jobs.executors.local", "app.api.routers.vet", "app.vet.cli",
            "estimators.sweep"} <= set(report["modules"])
    assert len(report["modules"]) > 60
    assert report["failures"] == {}, "\n\n".join(f"import {name}:\n{error}"
                                               for name, error in report["failures"].items())
