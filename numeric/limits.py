"""How much one input may make a command allocate, and how a refusal reads.

Sizes, files and options are priced before any work starts (an estimate of the memory and
time they imply); past a limit the command refuses with the estimate and the limit instead
of allocating gigabytes or looping for hours first. ``TooLarge`` is a ``ValueError``: exit
status 2 on the command line, like any other bad input.
"""

from __future__ import annotations

import math
import os

#: The share of physical memory one input may claim.
MEMORY_SHARE = 0.5
#: Where physical memory cannot be read.
FALLBACK_MEMORY = 8 * 2 ** 30


class TooLarge(ValueError):
    """An input whose estimated cost exceeds a limit."""


def memory_limit() -> int:
    """Bytes one input may make a command allocate: half of this machine's physical memory."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX
        total = 2 * FALLBACK_MEMORY
    return int(MEMORY_SHARE * total)


def count_text(n) -> str:
    """A size as typed when it is short (a whole float as an integer), else ``1e+500``-style
    (``.3g``)."""
    if isinstance(n, float) and n.is_integer() and abs(n) < 1e15:
        n = int(n)
    if isinstance(n, int) and abs(n) < 10 ** 15:
        return str(n)
    try:
        return f"{float(n):.3g}" if math.isfinite(float(n)) else "more than 1e300"
    except OverflowError:
        return f"1e+{len(str(abs(n))) - 1}"


def bytes_text(n: float) -> str:
    """``3.2 GB``: a byte count in decimal units (``inf`` beyond any unit)."""
    if not math.isfinite(n):
        return "more than 1e300 bytes"
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            break
        n /= 1000
    return f"{n:.0f} bytes" if unit == "bytes" else f"{n:.3g} {unit}"


def seconds_text(s: float) -> str:
    """``4.2 min``, ``3.1e+05 h``: a duration in the largest unit that keeps it readable."""
    if not math.isfinite(s):
        return "more than 1e300 s"
    if s < 120:
        return f"{s:.3g} s"
    if s < 7200:
        return f"{s / 60:.3g} min"
    return f"{s / 3600:.3g} h"
