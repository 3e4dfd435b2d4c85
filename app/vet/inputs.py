"""What `epiplex vet PATH...` checks: files, globs and directories of shards, as datasets.

A file is one dataset. A glob (quoted, so the shell leaves it alone) gives one dataset per match,
as if the shell had expanded it. A directory is one dataset made of its shards: every file under
it (hidden ones skipped), in path order, joined the way its format allows.
"""
from __future__ import annotations

import csv
import glob
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.vet.vetting import VetInputError

CHUNK = 1 << 20
GLOB_CHARACTERS = set("*?[")


@dataclass(frozen=True)
class DatasetSource:
    """One dataset to vet: its name (as the user wrote it) and the files it is made of."""

    name: str
    files: tuple[Path, ...]

    @property
    def sharded(self) -> bool:
        return len(self.files) > 1


def resolve(paths: list[str]) -> list[DatasetSource]:
    """The datasets named by `paths`; VetInputError says which path named nothing."""
    if not paths:
        raise VetInputError("no dataset given: name files, globs or directories "
                            "(or set `paths` in [tool.epiplex] of pyproject.toml)")
    sources: list[DatasetSource] = []
    for raw in paths:
        if GLOB_CHARACTERS & set(raw) and not os.path.exists(raw):
            matches = sorted(glob.glob(raw, recursive=True))
            if not matches:
                raise VetInputError(f"no files match {raw!r}")
            sources.extend(_source(match) for match in matches)
        else:
            sources.append(_source(raw))
    seen: dict[tuple[Path, ...], str] = {}
    for source in sources:
        key = tuple(file.resolve() for file in source.files)
        if key in seen:
            raise VetInputError(f"{source.name!r} and {seen[key]!r} name the same data; give it once")
        seen[key] = source.name
    return sources


def _source(raw: str) -> DatasetSource:
    path = Path(raw)
    if path.is_dir():
        shards = sorted(file for file in path.rglob("*")
                        if file.is_file() and not any(part.startswith(".")
                                                      for part in file.relative_to(path).parts))
        if not shards:
            raise VetInputError(f"directory {raw!r} holds no files to vet")
        return DatasetSource(raw, tuple(shards))
    if not path.exists():
        raise VetInputError(f"no such file or directory: {raw!r}")
    if not path.is_file():
        raise VetInputError(f"{raw!r} is not a regular file or a directory")
    if not os.access(path, os.R_OK):
        raise VetInputError(f"{raw!r} is not readable")
    return DatasetSource(raw, (path,))


def materialize(source: DatasetSource, format: str, workdir: str | Path) -> Path:
    """One file holding the dataset: the file itself, or its shards joined into `workdir`.

    bytes and text shards are concatenated; jsonl shards are joined line by line; csv shards
    must share one header, which is kept once; tokens (.npy) arrays are concatenated.
    """
    if not source.sharded:
        return source.files[0]
    kind = format.partition(":")[0]
    handle = tempfile.NamedTemporaryFile(dir=workdir, prefix="shards-", delete=False,
                                         suffix=".npy" if kind == "tokens" else ".data")
    handle.close()
    out = Path(handle.name)
    if kind == "tokens":
        _join_tokens(source, out)
    elif kind == "csv":
        _join_csv(source, out)
    else:
        with open(out, "wb") as sink:
            for shard in source.files:
                ends_with_newline = True
                with open(shard, "rb") as part:
                    while block := part.read(CHUNK):
                        sink.write(block)
                        ends_with_newline = block.endswith(b"\n")
                if kind == "jsonl" and not ends_with_newline:
                    sink.write(b"\n")
    return out


def _join_csv(source: DatasetSource, out: Path) -> None:
    header: list[str] | None = None
    with open(out, "wb") as sink:
        for shard in source.files:
            with open(shard, "rb") as part:
                first_line = part.readline()
                try:
                    columns = next(csv.reader(io.StringIO(first_line.decode("utf-8"))), [])
                except UnicodeDecodeError:
                    raise VetInputError(f"shard {shard}: the CSV header is not valid UTF-8") from None
                if header is None:
                    header = columns
                    sink.write(first_line if first_line.endswith(b"\n") else first_line + b"\n")
                elif columns != header:
                    raise VetInputError(f"shard {shard} has columns {columns}, unlike "
                                        f"{source.files[0]} ({header}); CSV shards must share one header")
                ends_with_newline = True
                while block := part.read(CHUNK):
                    sink.write(block)
                    ends_with_newline = block.endswith(b"\n")
                if not ends_with_newline:
                    sink.write(b"\n")


def _join_tokens(source: DatasetSource, out: Path) -> None:
    import numpy as np

    from estimators.data import DataFormatError, load_token_array

    arrays = []
    for shard in source.files:
        try:
            arrays.append(load_token_array(shard))
        except DataFormatError as error:
            raise VetInputError(f"shard {shard}: {error}") from None
    np.save(out, np.concatenate(arrays))
