"""PNG images of plotly figures, rendered by a headless Chromium.

plotly's own PNG export needs kaleido, which downloads a browser at run time; Debian's
`chromium` package renders the same self-contained HTML offline. Used by the experiments and
the documentation's figures (the HTML stays the figure of record).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import plotly.graph_objects as go

from mnsearch.errors import MnsearchError

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def write_png(figure: go.Figure, path: str | Path, width: int = 900, height: int = 520) -> Path:
    """Render `figure` at width × height pixels into `path` (a MnsearchError without a
    Chromium on the PATH)."""
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if browser is None:
        raise MnsearchError("a PNG needs a Chromium browser on the PATH (Debian: apt-get "
                            "install chromium); the HTML figure has the same content")
    path = Path(path).resolve()
    figure = go.Figure(figure).update_layout(width=width, height=height)
    with tempfile.TemporaryDirectory(prefix="mnsearch-png-") as folder:
        page = Path(folder) / "figure.html"
        page.write_text(figure.to_html(include_plotlyjs=True, full_html=True,
                                       config={"displayModeBar": False}))
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", f"--window-size={width + 16},{height + 16}",
                        "--virtual-time-budget=5000", f"--screenshot={path}", page.as_uri()],
                       check=True, capture_output=True, timeout=120)
    return path
