"""The console script re-runs itself with tcmalloc (cli.allocator); library calls do not."""

import ctypes.util
import json
import os
import subprocess
import sys

import pytest

from mnsearch.cli.allocator import active_allocator

BENCH = ["bench", "v1", "--alpha", "0.25", "--resolution", "16", "--in-channels", "1",
         "--classes", "2", "--schedule", "stem1", "--batch-size", "4", "--steps", "1", "--json"]
HAS_TCMALLOC = ctypes.util.find_library("tcmalloc_minimal") is not None


def _bench(**environment):
    env = {key: value for key, value in os.environ.items()
           if key not in ("LD_PRELOAD", "MNSEARCH_ALLOCATOR")}
    result = subprocess.run([sys.executable, "-m", "mnsearch", *BENCH], capture_output=True,
                            text=True, env={**env, **environment})
    return result


@pytest.mark.skipif(not HAS_TCMALLOC or sys.platform != "linux",
                    reason="tcmalloc is not installed (apt-get install libtcmalloc-minimal4)")
def test_console_script_runs_under_tcmalloc():
    result = _bench()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["allocator"] == "tcmalloc"


def test_allocator_can_be_switched_off_and_library_calls_keep_theirs():
    result = _bench(MNSEARCH_ALLOCATOR="system")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["allocator"] == "system"
    assert active_allocator() == ("tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "")
                                  else "system")  # pytest's own process was not re-executed


def test_unknown_allocator_is_one_line_and_exit_2():
    result = _bench(MNSEARCH_ALLOCATOR="jemalloc")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == ("mnsearch bench: error: MNSEARCH_ALLOCATOR='jemalloc' is "
                                     "not one of tcmalloc, system")
