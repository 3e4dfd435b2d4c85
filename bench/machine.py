"""The one description of the machine a benchmark ran on, printed above every table."""
from __future__ import annotations

import os
import platform


def machine() -> str:
    """CPU model, cores, Python, and the load average (a shared machine measures slower)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load1, load5, _ = os.getloadavg()
    return (f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load average {load1:.1f}/{load5:.1f} while measuring")
