"""`kernel`: numba's `njit`, with a disk cache that any change to the package invalidates.

numba checks a cached kernel against the source of the file that defines it and nothing else.
A kernel that inlines functions of other modules (`context_mixing._code` inlines
`records.learn_record`, `match_model.verified_run` and `blending.prefetch`) went on running
their old copies after only those modules changed: a fix there reached no score, under a
`code_hash` that said it had (`tests/test_estimator_units.py` shows it). A kernel compiled
here is stamped with `source_hash` of its whole top-level package (for this one, `code_hash`,
the key of saved runs and results), so any change compiles afresh.
"""
from __future__ import annotations

from pathlib import Path

from numba import njit
from numba.core import caching, config

from estimators import source_hash


def package_root(py_file: str) -> Path | None:
    """The folder of the top-level package that holds `py_file`; None for a loose module."""
    folder = Path(py_file).resolve().parent
    if not (folder / "__init__.py").exists():
        return None
    while (folder.parent / "__init__.py").exists():
        folder = folder.parent
    return folder


class _PackageStamp:
    def get_source_stamp(self):
        root = package_root(self._py_file)
        return source_hash(root) if root else super().get_source_stamp()


class UserProvidedLocator(_PackageStamp, caching.UserProvidedCacheLocator):
    """In NUMBA_CACHE_DIR, where it is set."""


class InTreeLocator(_PackageStamp, caching.InTreeCacheLocator):
    """In the package's __pycache__, where it can be written."""


class UserWideLocator(_PackageStamp, caching.UserWideCacheLocator):
    """In the user's cache folder otherwise."""


# numba's own order of places, each with the package's stamp
LOCATORS = ",".join(f"{__name__}.{locator.__name__}"
                    for locator in (UserProvidedLocator, InTreeLocator, UserWideLocator))


def kernel(**options):
    """A decorator: `njit(cache=True, **options)`, its cache stamped by the package's source.

    numba picks a kernel's cache locators when it is decorated, from
    `config.CACHE_LOCATOR_CLASSES`; they are set for that moment only, so numba code elsewhere
    in the process is cached as its authors chose."""
    def compile_cached(function):
        before, config.CACHE_LOCATOR_CLASSES = config.CACHE_LOCATOR_CLASSES, LOCATORS
        try:
            return njit(cache=True, **options)(function)
        finally:
            config.CACHE_LOCATOR_CLASSES = before
    return compile_cached
