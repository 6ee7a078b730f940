"""Time to first full render of `mnsearch dashboard` on a 10,000- or 100,000-trial study, in a
real browser.

    .venv/bin/python experiments/bench_dashboard.py [--trials 10000] [--repeats 3]
    .venv/bin/python experiments/bench_dashboard.py --trials 100000 --journal /tmp/bench100k.journal

Builds a synthetic study (`mnsearch.testing.synthetic`: real V1/V2/V3-Small specs and costs,
made-up accuracies) in a temporary journal file (or in `--journal`, kept and reused: 100,000
trials take a minute or more to write), starts `mnsearch dashboard` on it as a subprocess,
then loads the page in headless chromium (Debian's, driven by Playwright) and reads
`performance.now()` — milliseconds since the navigation started, measured by the browser — once
every trial is in the Pareto plot (a marker, or counted in the density of the dominated cloud
that replaces the markers past 10,000 points), the hypervolume plot is drawn and the trial
table shows its first page, after the next two animation frames (so everything is painted).
The first load is cold: the browser caches nothing (the dashboard reads the study before it
serves); the reloads are warm (the browser caches the scripts). Goal: < 3 s.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import optuna

from mnsearch.search.storage import open_storage
from mnsearch.testing.synthetic import synthetic_study

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RENDERED = """async (count) => {
  const ready = () => {
    const graph = document.querySelector('#pareto-graph .js-plotly-plot');
    const volume = document.querySelector('#hypervolume-graph .js-plotly-plot');
    if (!graph || !graph._fullData || !volume || !volume._fullData) return false;
    if (!volume._fullData.length) return false;
    let points = graph._fullData.filter(t => t.meta === 'trials')
                           .reduce((n, t) => n + t.x.length, 0);
    for (const t of graph._fullData.filter(t => t.meta === 'density'))
      for (const row of t.customdata) for (const cell of row) points += cell;  // typed arrays
    const table = document.querySelector('#trials-body');  // absent before the table existed
    if (table && !table.querySelector('tr')) return false;
    return points === count && graph.querySelector('canvas, .heatmaplayer image') !== null;
  };
  const start = performance.now();
  while (!ready()) {
    if (performance.now() - start > 60000) return -1;  // never rendered: reported as such
    await new Promise(resolve => setTimeout(resolve, 10));
  }
  await new Promise(resolve => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  return performance.now();
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_server(url: str, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the dashboard did not answer at {url}")


def write_study(journal: Path, trials: int) -> None:
    """The synthetic study 'bench' in `journal`, unless that file already exists."""
    if journal.exists():
        print(f"synthetic study: reusing {journal} ({journal.stat().st_size / 1e6:.1f} MB)")
        return
    started = time.perf_counter()
    synthetic_study(open_storage(str(journal)), "bench", trials, failed=50, running=5)
    print(f"synthetic study: {trials:,} complete trials (+50 failed, 5 running) written in "
          f"{time.perf_counter() - started:.1f} s; journal {journal.stat().st_size / 1e6:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3, help="warm reloads after the cold one")
    parser.add_argument("--journal", help="journal file to reuse (made there if absent; it "
                        "must hold the study 'bench' of --trials trials)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        journal = Path(args.journal or Path(folder) / "bench.journal")
        write_study(journal, args.trials)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "mnsearch", "dashboard", "--storage", str(journal),
             "--port", str(port), "--study", "bench"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}/"
            started = time.perf_counter()
            wait_for_server(url, seconds=300)
            print(f"dashboard answering {time.perf_counter() - started:.1f} s after its start "
                  "(imports, then reading the study)")
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                times = []
                for attempt in range(1 + args.repeats):
                    page.goto(url) if attempt == 0 else page.reload()
                    elapsed = page.evaluate(RENDERED, args.trials)
                    if elapsed < 0:
                        raise RuntimeError("the page did not render every point within 60 s")
                    times.append(elapsed / 1000)
                    kind = "cold browser cache" if attempt == 0 else "warm"
                    print(f"load {attempt + 1}: {times[-1]:.2f} s to full render, {kind}")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"first full render of {args.trials:,} trials: cold {times[0]:.2f} s, warm median "
          f"{statistics.median(times[1:]):.2f} s (goal < 3 s)")


if __name__ == "__main__":
    main()
