"""The one cache folder of mnsearch: compiled native kernels, downloaded datasets.

$MNSEARCH_CACHE_DIR, else $XDG_CACHE_HOME/mnsearch, else ~/.cache/mnsearch. Everything in it
can be deleted at any time; it is rebuilt or fetched again on demand.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENVIRONMENT = "MNSEARCH_CACHE_DIR"


def cache_folder(part: str) -> Path:
    """The cache subfolder `part` (not created here: writers create it when they write)."""
    root = os.environ.get(CACHE_ENVIRONMENT) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mnsearch")
    return Path(root) / part
