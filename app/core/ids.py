"""Opaque, sortable-enough ids with a readable prefix (ds_..., job_...)."""
import secrets
import time


def new_id(prefix: str) -> str:
    # A millisecond timestamp first keeps ids roughly in creation order; the rest avoids clashes.
    return f"{prefix}_{int(time.time() * 1000):011x}{secrets.token_hex(6)}"
