"""The typed floors stay typed: mypy over spec/, cost.py and search/ (settings in pyproject)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["mnsearch/spec", "mnsearch/cost.py", "mnsearch/search"]


@pytest.mark.skipif(shutil.which("mypy") is None and not (Path(sys.executable).parent / "mypy")
                    .exists(), reason="mypy is not installed (it is in the test extra)")
def test_typed_floors_pass_mypy():
    result = subprocess.run([sys.executable, "-m", "mypy", *CHECKED], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
