"""Every example in README.md and docs/*.md runs as written: offline, in seconds.

Files are read in the order a new user meets them: the README on its own, then the docs pages
in the order of mkdocs.yml's nav, all in one working directory (later pages use the toy image
folder and the toy study that earlier ones make). Within a file, the blocks run top to bottom:

- ```python blocks share one namespace per file and run in this process (JAX is imported
  once for all of them);
- ```console / ```bash blocks whose commands start with `mnsearch ` or `python` run in a shell
  (a block mixing those with other commands is an error); other shell blocks, such as
  `apt-get install …`, are prose;
- `<!-- example: skip (reason) -->` on the line(s) before a block skips it: the reason is
  required and is reported;
- `<!-- example: write FILE -->` before a block writes its text to FILE (a space file, a CSV)
  instead of running it.

The working directory holds a copy of search_spaces/, as a clone's root does.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHELL_LANGUAGES = ("console", "bash", "shell", "sh")
RUNNABLE_COMMAND = re.compile(r"^(mnsearch |python)")
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
MARKER = re.compile(r"<!--\s*example:\s*((?:(?!-->).)*?)\s*-->\s*\Z", re.S)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    language: str
    text: str
    marker: str | None  # "skip (reason)", "write FILE" or None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_files() -> list[Path]:
    """README.md, then the docs pages in the nav's order (the order a reader meets them)."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = []
    for entry in config["nav"]:
        pages.extend(entry.values() if isinstance(entry, dict) else [entry])
    return [ROOT / "README.md"] + [ROOT / "docs" / page for page in pages]


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, each with the example marker before it."""
    text = path.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip()
        marker = MARKER.search(before)
        found.append(Block(path, text.count("\n", 0, match.start()) + 2, match[1].lower(),
                           match[2], marker[1] if marker else None))
    return found


def shell_commands(text: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blanks dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def is_runnable_shell(block: Block) -> bool:
    commands = shell_commands(block.text)
    runnable = [bool(RUNNABLE_COMMAND.match(command)) for command in commands]
    if any(runnable) and not all(runnable):
        raise AssertionError(f"{block.where}: a shell example mixes mnsearch/python commands "
                             "with others; split it, or mark it <!-- example: skip (why) -->")
    return bool(commands) and all(runnable)


def run_shell(block: Block, workdir: Path) -> None:
    environment = dict(os.environ)
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    for command in shell_commands(block.text):
        result = subprocess.run(["bash", "-c", command], cwd=workdir, env=environment,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (f"{block.where}: `{command}` exited "
                                        f"{result.returncode}\n{result.stdout}\n{result.stderr}")


def run_file(path: Path, workdir: Path, monkeypatch) -> list[str]:
    """Run every example of `path` in `workdir`; returns the skip reasons it met."""
    namespace: dict = {"__name__": "__example__"}
    skipped = []
    monkeypatch.chdir(workdir)
    for block in blocks(path):
        if block.marker is not None:
            kind, _, argument = block.marker.partition(" ")
            if kind == "skip":
                assert re.fullmatch(r"\(.+\)", argument.strip()), \
                    f"{block.where}: a skipped example says why: <!-- example: skip (reason) -->"
                skipped.append(f"{block.where}: {argument.strip()[1:-1]}")
                continue
            assert kind == "write" and argument.strip(), \
                f"{block.where}: unknown example marker '{block.marker}'"
            (workdir / argument.strip()).write_text(block.text)
            continue
        if block.language == "python":
            code = compile("\n" * (block.line - 1) + block.text, str(block.path), "exec")
            exec(code, namespace)  # the documentation's own examples, as a reader runs them
        elif block.language in SHELL_LANGUAGES and is_runnable_shell(block):
            run_shell(block, workdir)
    return skipped


class DocsSession:
    """One working directory for the docs pages, run in nav order, each page once."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.done: dict[Path, list[str]] = {}
        shutil.copytree(ROOT / "search_spaces", workdir / "search_spaces")

    def run_through(self, path: Path, monkeypatch) -> list[str]:
        """Run the pages before `path` that have not run yet (their files are its inputs),
        then `path`; returns `path`'s skip reasons."""
        pages = doc_files()[1:]
        for page in pages[:pages.index(path) + 1]:
            if page not in self.done:
                self.done[page] = run_file(page, self.workdir, monkeypatch)
        return self.done[path]


@pytest.fixture(scope="module")
def docs_session(tmp_path_factory):
    return DocsSession(tmp_path_factory.mktemp("docs-examples"))


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # keras'
@pytest.mark.parametrize("path", doc_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_examples_run(path, docs_session, tmp_path, monkeypatch, capsys):
    started = time.perf_counter()
    if path.name == "README.md":
        skipped = run_file(path, tmp_path, monkeypatch)
    else:
        skipped = docs_session.run_through(path, monkeypatch)
    with capsys.disabled():
        print(f"\n{path.relative_to(ROOT)}: {time.perf_counter() - started:.1f} s"
              + "".join(f"\n  skipped {reason}" for reason in skipped))


def test_every_page_is_in_the_nav_and_skips_are_few():
    pages = {path.name for path in (ROOT / "docs").glob("*.md")}
    assert pages == {path.name for path in doc_files()[1:]}
    skipped = [block for path in doc_files() for block in blocks(path)
               if block.marker and block.marker.startswith("skip")]
    examples = [block for path in doc_files() for block in blocks(path)
                if block.language == "python" or (block.language in SHELL_LANGUAGES
                                                  and is_runnable_shell(block))]
    assert len(skipped) <= len(examples) // 3, [block.where for block in skipped]
