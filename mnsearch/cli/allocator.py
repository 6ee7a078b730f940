"""Run the CLI with tcmalloc where it is installed: a training step's memory is then reused.

XLA:CPU allocates each step's temporaries as one buffer (133 MB for V2 α=1, 32 px, batch 128),
from one of its worker threads. glibc's malloc serves a worker thread from a thread arena, which
cannot grow past 64 MB, so the buffer is mmap-ed and unmapped again every step, and the kernel
zero-fills ~34,000 fresh pages per step: half a core spent in the kernel (sys/wall 0.5 on
2 cores). tcmalloc keeps freed spans for reuse: page faults fell ~10x and V2 training images/s
rose 1.5-1.7x here (README, "CPU speed"). Tuning glibc instead (one arena, no mmap, no trim)
helped V2 as much but cost V3-small ~35% in lock contention, so it is not used.

The allocator has to be chosen before the process starts, so the `mnsearch` console script
re-executes itself once with tcmalloc in LD_PRELOAD, as PyTorch's CPU launcher
(torch.backends.xeon.run_cpu) does. Nothing happens on import, in library calls, where
tcmalloc is not installed (Debian/Ubuntu: `apt-get install libtcmalloc-minimal4`), or with
MNSEARCH_ALLOCATOR=system.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mnsearch.errors import MnsearchError

ALLOCATOR_ENVIRONMENT = "MNSEARCH_ALLOCATOR"
ALLOCATORS = ("tcmalloc", "system")


def _requested() -> str:
    choice = os.environ.get(ALLOCATOR_ENVIRONMENT, "tcmalloc")
    if choice not in ALLOCATORS:
        raise MnsearchError(f"{ALLOCATOR_ENVIRONMENT}='{choice}' is not one of "
                         f"{', '.join(ALLOCATORS)}")
    return choice


def active_allocator() -> str:
    """'tcmalloc' when this process has tcmalloc mapped, else 'system'."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "system"
    return "tcmalloc" if "libtcmalloc" in maps else "system"


def restart_with_tcmalloc(arguments: Sequence[str]) -> None:
    """Replace this process by `python ARGUMENTS` with tcmalloc preloaded, when it should be.

    Returns (doing nothing) when tcmalloc is already loaded or was already tried, is not
    installed, is switched off, or the platform is not Linux.
    """
    preload = os.environ.get("LD_PRELOAD", "")
    if sys.platform != "linux" or _requested() == "system" or "tcmalloc" in preload:
        return
    library = ctypes.util.find_library("tcmalloc_minimal") or ctypes.util.find_library("tcmalloc")
    if library is None:
        return
    environment = dict(os.environ, LD_PRELOAD=" ".join(filter(None, (library, preload))))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *arguments], environment)
