"""Numbers as the pages show them: always with their unit (bits, bits/byte, FLOPs, bytes)."""
from __future__ import annotations

from datetime import datetime

BINARY_PREFIXES = ("bytes", "KiB", "MiB", "GiB", "TiB")


def bits(value: float | None) -> str:
    """Total bits, grouped by thousands: "489,374 bits"."""
    return "–" if value is None else f"{value:,.0f} bits"


def bits_per_byte(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f} bits/byte"


def signed_bits_per_byte(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f} bits/byte"


def flops(value: float | None) -> str:
    """A compute budget: "1e12 FLOPs", "3.2e11 FLOPs"."""
    if value is None:
        return "–"
    mantissa, exponent = f"{value:.1e}".split("e")
    mantissa = mantissa.removesuffix(".0")
    return f"{mantissa}e{int(exponent)} FLOPs"


def size(value: int | None) -> str:
    """A byte count, exact and readable: "32,768 bytes (32.0 KiB)"."""
    if value is None:
        return "–"
    exact = f"{value:,} byte{'s' * (value != 1)}"
    scaled, prefix = float(value), 0
    while scaled >= 1024 and prefix < len(BINARY_PREFIXES) - 1:
        scaled, prefix = scaled / 1024, prefix + 1
    return exact if prefix == 0 else f"{exact} ({scaled:.1f} {BINARY_PREFIXES[prefix]})"


def seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f} s"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def moment(value: datetime | None) -> str:
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


FILTERS = {"bits": bits, "bpb": bits_per_byte, "signed_bpb": signed_bits_per_byte, "flops": flops,
           "size": size, "seconds": seconds, "percent": percent, "moment": moment}
