"""General-purpose compressors beside the learner: cheap upper bounds on information per byte."""
from __future__ import annotations

import lzma

import zstandard

from estimators.data import TokenData

SAMPLE_BYTES = 16 << 20  # beyond this, compress a prefix and scale: level 19 runs ~2 MB/s
# About the most memory the two compressors hold, one after the other, on SAMPLE_BYTES: lzma's
# match finder raised a process's peak by 205 MiB on 16 MiB of Python source, zstd by 78.
COMPRESSOR_MEMORY_BYTES = 256 << 20


def compressor_baselines(data: TokenData) -> dict:
    """zstd (level 19) and lzma (preset 9) bits per byte coded, over the stream the learner codes.

    Tokens are packed at the token width (see `TokenData.modelled_bytes`), so a compressor sees
    the same content and the same denominator as the learner, whatever dtype was uploaded."""
    sample_tokens = SAMPLE_BYTES // data.token_bytes
    stream = data.modelled_bytes(limit=sample_tokens)
    scale = max(1.0, len(data.tokens) / sample_tokens)
    zstd_bits = 8 * len(zstandard.ZstdCompressor(level=19).compress(stream)) * scale
    lzma_bits = 8 * len(lzma.compress(stream, preset=9)) * scale
    return {
        "zstd_bits_per_byte": zstd_bits / data.bytes_coded,
        "lzma_bits_per_byte": lzma_bits / data.bytes_coded,
        "sampled_bytes": len(stream),
    }
