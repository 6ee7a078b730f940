"""Figures at scale: what is drawn instead of every point when a study has more than a browser
can take (100,000 trials: 7 MB of points in one dashboard figure, 29 MB of report).

Above `DENSITY_ABOVE` points the dominated cloud is drawn as a density: the number of trials
in each cell of a log-spaced Mult-Adds × accuracy grid, counted here with numpy (`density`) and
drawn as a heatmap of log counts (`density_trace`), a few kilobytes whatever the study's size,
while the Pareto front stays exact points. The lines of the V1 paper's Figures 4 and 5 go
through the median accuracy of their trials in log-spaced bins of x (`binned_medians`). Below
the threshold every figure draws every point, as it always did: the exact scatter is better
when it fits.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go

# Points above which clouds become densities: the dashboard paints 10,000 WebGL points with
# their hovers in about 2 s on a cold browser (experiments/results/bench_dashboard.txt).
DENSITY_ABOVE = 10_000
DENSITY_BINS = (120, 80)  # Mult-Adds × accuracy cells: about 7 px square on the dashboard
LINE_BINS = 40  # log-spaced bins of x for each line of Figures 4 and 5 at scale
GREYS = [[0.0, "#dee2e6"], [1.0, "#343a40"]]  # the dominated cloud: grey, as its markers were
ORANGES = [[0.0, "#ffe5cc"], [1.0, "#d9480f"]]  # trials stopped early


class Density(NamedTuple):
    """Point counts on a grid: `counts[row, column]` trials have y in row's bin and x in
    column's (edges ascending; each bin holds its lower edge, the last ones both edges)."""

    x_edges: np.ndarray  # log-spaced, in the figure's unit (millions of Mult-Adds)
    y_edges: np.ndarray
    counts: np.ndarray  # int, shape (len(y_edges) - 1, len(x_edges) - 1)

    @property
    def total(self) -> int:
        return int(self.counts.sum())


def log_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """`bins` + 1 log-spaced edges from the smallest to the largest of `values` (all > 0).

    The ends are set to those values exactly, so rounding in the logarithms never leaves the
    extreme points outside the grid; a single value gets a cell 10% wide around it.
    """
    low, high = float(np.min(values)), float(np.max(values))
    if low == high:
        low, high = low / 1.05, high * 1.05
    edges = np.geomspace(low, high, bins + 1)
    edges[0], edges[-1] = low, high
    return edges


def _linear_edges(values: np.ndarray, bins: int) -> np.ndarray:
    low, high = float(np.min(values)), float(np.max(values))
    if low == high:
        low, high = low - 0.005, high + 0.005
    return np.linspace(low, high, bins + 1)


def density(x: np.ndarray | pd.Series, y: np.ndarray | pd.Series,
            bins: tuple[int, int] = DENSITY_BINS) -> Density:
    """Counts of the points (x > 0 on a log grid, y linear) in `bins` (x bins, y bins) cells;
    every point is counted once (`Density.total` is the number of points)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if not len(x):
        return Density(np.empty(0), np.empty(0), np.zeros((0, 0), dtype=int))
    x_edges, y_edges = log_edges(x, bins[0]), _linear_edges(y, bins[1])
    counts, _, _ = np.histogram2d(y, x, bins=[y_edges, x_edges])
    return Density(x_edges, y_edges, counts.astype(int))


def density_trace(cloud: Density, name: str, colorscale: list | None = None,
                  **trace: object) -> go.Heatmap:
    """A heatmap of `cloud`: colour by log10 of the count (a few crowded cells would otherwise
    wash out the rest), the count itself in `customdata` and the hover, empty cells clear."""
    counts = cloud.counts
    shade = np.log10(counts, where=counts > 0, out=np.full(counts.shape, np.nan))
    decades = range(int(np.nanmax(shade, initial=0)) + 1)
    colorbar = {"title": {"text": "trials per cell", "side": "right"}, "thickness": 10,
                "len": 0.35, "x": 0.01, "xanchor": "left", "y": 0.99, "yanchor": "top",
                "tickvals": list(decades), "ticktext": [f"{10 ** decade:,}" for decade in decades],
                "bgcolor": "rgba(255,255,255,0.8)"}  # top left: above the front, always empty
    return go.Heatmap(x=cloud.x_edges, y=cloud.y_edges, z=shade, customdata=counts, name=name,
                      meta="density", colorscale=colorscale or GREYS, zmin=0,
                      zmax=max(len(decades) - 1, 1), hoverongaps=False, colorbar=colorbar,
                      hovertemplate=f"%{{customdata:,}} trials ({name})<br>Mult-Adds ≈ "
                                    "%{x:.3g} M · accuracy ≈ %{y:.1%}<extra></extra>",
                      **trace)


def binned_medians(x: pd.Series, accuracy: pd.Series, stopped: pd.Series, edges: np.ndarray,
                   ) -> pd.DataFrame:
    """One row per non-empty bin of x (`edges`), in order of x: the median x and accuracy of
    its points, how many there are (`trials`), and whether most were stopped early."""
    bins = np.clip(np.searchsorted(edges, np.asarray(x, dtype=float), side="right") - 1,
                   0, len(edges) - 2)
    points = pd.DataFrame({"bin": bins, "x": np.asarray(x, dtype=float),
                           "accuracy": np.asarray(accuracy, dtype=float),
                           "stopped": np.asarray(stopped, dtype=float)})
    medians = points.groupby("bin", sort=True).agg(
        x=("x", "median"), accuracy=("accuracy", "median"), trials=("x", "size"),
        stopped=("stopped", "mean"))
    return medians.assign(stopped=medians["stopped"] > 0.5).reset_index(drop=True)
