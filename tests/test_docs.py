"""The documentation: the mkdocs site builds offline with --strict, and the README stays short.

`mkdocs build --strict` is how CI builds the site: this test is that build. It fails on any
warning (a broken link or anchor, a page missing from the nav, a docstring mkdocstrings cannot
read) and on any page that would load a script or stylesheet from the network.
"""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_LIMIT = 12 * 1024  # bytes: the README introduces, the docs site explains


def test_site_builds_strict_and_offline(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[test]')")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 10
    api = (site / "api" / "index.html").read_text()
    assert "train_and_evaluate" in api and "doc-heading" in api  # mkdocstrings rendered
    remote = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=\"(?:https?:)?//", re.I)
    for page in pages:
        assert not remote.search(page.read_text()), f"{page} loads something from the network"


def test_architecture_page_names_every_module():
    text = (ROOT / "docs" / "architecture.md").read_text()
    modules = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "mnsearch").rglob("*.py")
                     if path.name not in ("__init__.py", "__main__.py"))
    missing = [module for module in modules if f"`{module}`" not in text]
    assert not missing, f"docs/architecture.md has no line for {missing}"


def test_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= README_LIMIT
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [link.split("#")[0] for link in links if "://" not in link]
    assert local, "the README should link to the docs"
    missing = [link for link in local if link and not (ROOT / link).exists()]
    assert not missing, f"README links to missing files: {missing}"
