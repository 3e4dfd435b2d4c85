"""Datasets in, token streams out: formats, validation, held-out split and batches.

Torch-free, so the web process can validate uploads. Bytes are modelled as tokens
0..255 by default; every other format is turned into a token file once and memory-mapped.

Per-byte figures divide by the bytes *coded*, not the bytes uploaded: for text and bytes they
are the same; for JSONL/CSV only the selected field's text (documents joined by a two-byte
separator, which is coded too); for `.npy` tokens, tokens times the token width, the bytes of
the smallest unsigned integer holding every id (1 up to 256 ids, 2 up to the cap). So the same
tokens saved as int64 or uint16 score the same.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

CHUNK = 1 << 20
DOCUMENT_SEPARATOR = b"\n\n"
# The embedding and the readout grow with the vocabulary, and so do the logits of every batch
# (quick: 4,096 tokens x 65,536 ids x 4 bytes = 1 GiB); ids must fit in 16 bits, as GPT-2's do.
MAX_VOCAB = 1 << 16


class DataFormatError(ValueError):
    """The format string is unknown, or the data does not match it."""


@dataclass(frozen=True)
class Format:
    kind: str  # bytes | text | jsonl | csv | tokens
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}:{self.field}" if self.field else self.kind


def check_format(spec: str) -> Format:
    """Parse a format string; raise DataFormatError saying what is accepted."""
    kind, _, field = spec.partition(":")
    if kind in ("bytes", "text", "tokens") and not field:
        return Format(kind)
    if kind in ("jsonl", "csv") and field:
        return Format(kind, field)
    raise DataFormatError(
        f"unknown format {spec!r}: use bytes, text, jsonl:FIELD, csv:COLUMN or tokens")


@dataclass
class TokenData:
    """A dataset as a token array, with what the result needs to describe it."""

    tokens: np.ndarray  # 1-D integer array, usually a read-only memory map
    vocab_size: int
    bytes: int  # size of the dataset as uploaded
    sha256: str
    format: str
    token_bytes: int = 1  # width of one token in the coded stream, see `token_width`

    @property
    def bytes_coded(self) -> int:
        """The denominator of every per-byte figure: the bytes of the stream the learner codes."""
        return len(self.tokens) * self.token_bytes

    def modelled_bytes(self, limit: int | None = None) -> bytes:
        """The stream the learner codes, `token_bytes` little-endian bytes per token
        (what the compressor baselines compress, so they are per byte coded too)."""
        view = np.asarray(self.tokens if limit is None else self.tokens[:limit])
        if self.token_bytes == 1:
            return view.astype(np.uint8, copy=False).tobytes()
        return view.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :self.token_bytes].tobytes()


def token_width(vocab_size: int) -> int:
    """Bytes of the smallest unsigned integer that holds every id below `vocab_size`."""
    return max(1, ((max(vocab_size, 2) - 1).bit_length() + 7) // 8)


def sha256_of(path: str | os.PathLike) -> str:
    """The file's sha256, hex, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _iter_text(path: Path) -> Iterator[str]:
    """Decode UTF-8 incrementally so a bad byte is reported with its offset."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            try:
                yield decoder.decode(block)
            except UnicodeDecodeError as e:
                raise DataFormatError(
                    f"not valid UTF-8 text: bad byte at offset {offset + e.start}") from None
            offset += len(block)
        try:
            yield decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise DataFormatError("not valid UTF-8 text: truncated character at the end") from None


def _iter_jsonl(path: Path, field: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise DataFormatError(f"line {number} is not valid JSON: {e}") from None
            if not isinstance(record, dict) or field not in record:
                raise DataFormatError(f"line {number} has no field {field!r}")
            value = record[field]
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            yield text.encode("utf-8")


def _iter_csv(path: Path, column: str) -> Iterator[bytes]:
    with open(path, newline="", encoding="utf-8", errors="strict") as f:
        try:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or column not in reader.fieldnames:
                raise DataFormatError(
                    f"CSV has no column {column!r}; columns are {reader.fieldnames or []}")
            for row in reader:
                yield (row[column] or "").encode("utf-8")
        except UnicodeDecodeError as e:
            raise DataFormatError(f"CSV is not valid UTF-8: {e.reason}") from None
        except csv.Error as e:
            raise DataFormatError(f"not valid CSV: {e}") from None


def read_token_array(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """A `.npy` file of token ids, memory-mapped and flattened, and its largest id.

    Reads the header and streams the values once for their range, so a large upload is
    checked without being loaded into memory."""
    with open(path, "rb") as handle:
        if handle.read(6) != b"\x93NUMPY":  # else numpy's message suggests unpickling it
            raise DataFormatError("not a .npy array: the file does not start with the .npy "
                                  "header; save the token ids with numpy.save")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:  # numpy raises several types for a bad header
        raise DataFormatError(f"not a .npy array: {e}") from None
    if array.dtype.kind not in "iu":
        raise DataFormatError(f"tokens must be an integer array, got dtype {array.dtype}: "
                              "save the ids with an integer dtype such as uint16 or int64")
    if array.ndim not in (1, 2):
        raise DataFormatError(f"tokens must be a 1-D array (or 2-D, rows read in order), got "
                              f"shape {array.shape}: reshape it before saving")
    if array.size == 0:
        raise DataFormatError("the token array is empty")
    flat = array.reshape(-1)
    # Block by block, so each block is read from disk once for both its minimum and maximum.
    ranges = [(int(b.min()), int(b.max()))
              for b in (flat[i:i + CHUNK] for i in range(0, flat.size, CHUNK))]
    low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
    if low < 0:
        raise DataFormatError(f"token ids must be non-negative, found {low}")
    if high >= MAX_VOCAB:
        raise DataFormatError(
            f"token id {high:,} is above the largest allowed id, {MAX_VOCAB - 1:,}: "
            f"vocabularies are capped at {MAX_VOCAB:,} ids because the model grows with the "
            "vocabulary. Remap the ids you use to 0..N-1 (e.g. numpy.unique(tokens, "
            "return_inverse=True)) or use a tokenizer with a smaller vocabulary")
    return flat, high


def load_token_array(path: str | os.PathLike) -> np.ndarray:
    """A `.npy` file of token ids, checked (see `read_token_array`), memory-mapped and flat."""
    return read_token_array(path)[0]


def _documents(path: Path, fmt: Format) -> Iterator[bytes]:
    if fmt.kind == "jsonl":
        return _iter_jsonl(path, fmt.field)
    return _iter_csv(path, fmt.field)


def validate_file(path: str | os.PathLike, spec: str) -> None:
    """Raise DataFormatError if the file does not match its declared format."""
    path, fmt = Path(path), check_format(spec)
    if fmt.kind == "text":
        for _ in _iter_text(path):
            pass
    elif fmt.kind in ("jsonl", "csv"):
        records, text_bytes = 0, 0
        for document in _documents(path, fmt):
            records, text_bytes = records + 1, text_bytes + len(document)
        if records == 0:
            raise DataFormatError(f"no {fmt.kind} records with {fmt.field!r} found")
        if text_bytes == 0:
            raise DataFormatError(f"every {fmt.field!r} value is empty: there is nothing to code")
    elif fmt.kind == "tokens":
        read_token_array(path)
    if path.stat().st_size == 0:
        raise DataFormatError("the dataset is empty")


def load(source: str | os.PathLike | bytes, spec: str = "bytes", *,
         vocab_size: int | None = None, workdir: str | os.PathLike | None = None) -> TokenData:
    """Read a dataset as tokens without holding more than one block in memory."""
    fmt = check_format(spec)
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
        if fmt.kind == "bytes":
            return TokenData(np.frombuffer(raw, dtype=np.uint8), 256, len(raw),
                             hashlib.sha256(raw).hexdigest(), str(fmt))
        handle = tempfile.NamedTemporaryFile(dir=workdir, suffix=".npy" * (fmt.kind == "tokens"),
                                             delete=False)
        with handle:
            handle.write(raw)
        try:
            return load(handle.name, spec, vocab_size=vocab_size, workdir=workdir)
        finally:
            os.unlink(handle.name)  # the memory map keeps the data readable on POSIX

    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is a directory: give a file" if path.is_dir()
                                else f"no such file: {path}")
    size, sha = path.stat().st_size, sha256_of(path)
    if size == 0:
        raise DataFormatError("the dataset is empty")
    if fmt.kind == "bytes":
        return TokenData(np.memmap(path, dtype=np.uint8, mode="r"), 256, size, sha, str(fmt))
    if fmt.kind == "text":
        for _ in _iter_text(path):
            pass
        return TokenData(np.memmap(path, dtype=np.uint8, mode="r"), 256, size, sha, str(fmt))
    if fmt.kind == "tokens":
        tokens, largest = read_token_array(path)
        if vocab_size is not None and largest >= vocab_size:
            raise DataFormatError(f"token {largest} is outside the vocabulary of {vocab_size}")
        if vocab_size is not None and vocab_size > MAX_VOCAB:
            raise DataFormatError(f"a vocabulary of {vocab_size:,} is above the cap of "
                                  f"{MAX_VOCAB:,} ids")
        vocab = vocab_size or largest + 1
        return TokenData(tokens, vocab, size, sha, str(fmt), token_width(vocab))

    # jsonl / csv: extract the field into a byte file once, then memory-map it.
    with tempfile.NamedTemporaryFile(dir=workdir, suffix=".tokens", delete=False) as out:
        first = True
        for document in _documents(path, fmt):
            out.write(document if first else DOCUMENT_SEPARATOR + document)
            first = False
    try:
        if first:
            raise DataFormatError(f"no {fmt.kind} records with {fmt.field!r} found")
        if os.path.getsize(out.name) == 0:
            raise DataFormatError(f"every {fmt.field!r} value is empty: there is nothing to code")
        return TokenData(np.memmap(out.name, dtype=np.uint8, mode="r"), 256, size, sha, str(fmt))
    finally:
        os.unlink(out.name)


@dataclass(frozen=True)
class Split:
    """Sequences of `context + 1` tokens (overlapping by one, so each token is a target once):
    a held-out slice spread over the whole stream, never trained on, and the rest shuffled by
    seed into training order."""

    tokens: np.ndarray
    context: int
    train: np.ndarray  # sequence start offsets, in training order
    heldout: np.ndarray

    @property
    def train_tokens(self) -> int:
        return len(self.train) * self.context

    @property
    def heldout_tokens(self) -> int:
        return len(self.heldout) * self.context

    def heldout_sample(self, count: int) -> np.ndarray:
        """`count` held-out sequences evenly spaced through the slice (so through the stream),
        or all of them: what a cheap early checkpoint evaluates."""
        if count >= len(self.heldout):
            return self.heldout
        return self.heldout[np.arange(count) * len(self.heldout) // count]

    def sequences(self, starts: np.ndarray) -> np.ndarray:
        index = starts[:, None] + np.arange(self.context + 1)[None, :]
        return np.asarray(self.tokens[index], dtype=np.int64)


HELDOUT_FRACTION = 0.05
MIN_SEQUENCES = 4


def heldout_sequences(count: int, context: int, heldout_tokens: int) -> int:
    """How many of `count` sequences the held-out slice takes: 5%, capped, at least one."""
    return max(1, min(int(count * HELDOUT_FRACTION), heldout_tokens // context))


def split(tokens: np.ndarray, context: int, seed: int, heldout_tokens: int) -> Split:
    """Cut the stream into shuffled sequences and set aside a held-out slice."""
    count = (len(tokens) - 1) // context
    if count < MIN_SEQUENCES:
        raise DataFormatError(f"the dataset has {len(tokens)} tokens; at least "
                              f"{MIN_SEQUENCES * context + 1} are needed")
    rng = np.random.default_rng(seed)
    held = heldout_sequences(count, context, heldout_tokens)
    # One held-out sequence at a random place in each of `held` equal stretches, in stream
    # order. A uniform draw let chance decide how much of each part of a file was held out:
    # on 256 KiB (random bytes, then as many constant ones), an early checkpoint's
    # first 22 sequences held about 5 random ones and scored 1.85 bits/byte, under the 4 that the
    # random half alone costs, and the frontier chose it.
    edges = np.arange(held + 1) * count // held
    heldout = edges[:-1] + (rng.random(held) * (edges[1:] - edges[:-1])).astype(np.int64)
    train = np.ones(count, dtype=bool)
    train[heldout] = False
    return Split(tokens, context, rng.permutation(np.flatnonzero(train)) * context,
                 heldout * context)


def batch_schedule(total_sequences: int, full_batch: int) -> list[int]:
    """Sequences per step: start from one and double every two steps up to the full batch.

    Small first batches keep the cost of coding data with an untrained model small:
    the start-up cost of the learner is not structure in the data.
    """
    sizes, used, step = [], 0, 0
    while used < total_sequences:
        size = min(full_batch, 2 ** (step // 2), total_sequences - used)
        sizes.append(size)
        used += size
        step += 1
    return sizes

