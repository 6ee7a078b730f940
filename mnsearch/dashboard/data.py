"""The dashboard's data: one open storage, cached study frames, filters (no Dash, no JAX).

The storage is opened once and kept: Optuna's journal storage then reads only the lines added
since the last call, so refreshing a page during a sweep costs little. A study's frame is
rebuilt only when its trials changed (count or states), which keeps a 10,000-trial study fast.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd

from mnsearch.errors import MnsearchError
from mnsearch.results.frames import COLUMNS, completed, trials_frame
from mnsearch.search.storage import (
    DEFAULT_STORAGE,
    StorageError,
    load_study,
    mask_password,
    open_existing_storage,
    study_names,
)

RECHECK_SECONDS = 1.0  # the page polls every 5 s; its callbacks come in bursts
# state and duplicate_of travel along so that the points are a frame the shared figure data
# functions (`mnsearch.plots.study`) accept as it is; the trial table shows the last two
PLOT_COLUMNS = ["study", "number", "state", "duplicate_of", "alpha", "resolution", "rho",
                "block_types", "madds", "params", "latency_ms", "val_accuracy",
                "test_accuracy", "train_seconds"]


@dataclass(frozen=True)
class Filters:
    """What the filter controls ask for; None (or an empty list) means no restriction."""

    max_madds_m: float | None = None
    min_accuracy: float | None = None
    block_types: tuple[str, ...] = ()
    alphas: tuple[float, ...] = ()
    resolutions: tuple[int, ...] = ()


class DashboardData:
    """A storage URL, opened lazily once, and the frames of its studies."""

    def __init__(self, url: str | None = None):
        self.url = url or DEFAULT_STORAGE
        self._storage: optuna.storages.BaseStorage | None = None
        self._frames: dict[str, tuple[tuple, pd.DataFrame]] = {}
        self._derived: dict[str, tuple[tuple, Any]] = {}
        self._checked: dict[str, float] = {}  # when each study was last looked at
        self._lock = threading.Lock()  # Flask serves callbacks from several threads

    @property
    def label(self) -> str:
        """The storage as it may be shown (password masked)."""
        return mask_password(self.url)

    def storage(self) -> optuna.storages.BaseStorage:
        """The open storage; a journal file must already exist (the dashboard never makes one)."""
        if self._storage is None:
            self._storage = open_existing_storage(self.url)
        return self._storage

    def names(self) -> list[str]:
        """The studies in the storage (a StorageError if it cannot be read)."""
        try:
            return study_names(self.storage())
        except MnsearchError:
            raise
        except Exception as error:
            raise StorageError(f"cannot read storage {self.label}: "
                               f"{str(error).splitlines()[0][:200]}") from None

    def links(self) -> dict[str, str]:
        """Each final study (`mnsearch finalize`) and its proxy study, from the study records
        (one read of the study list, no trials)."""
        return {study.study_name: proxy for study in self.storage().get_all_studies()
                if isinstance(proxy := study.user_attrs.get("proxy_study"), str)}

    def simulated(self) -> set[str]:
        """The studies made by `mnsearch sweep --simulate` (labelled SIMULATED everywhere)."""
        return {study.study_name for study in self.storage().get_all_studies()
                if study.user_attrs.get("simulated")}

    def frame(self, name: str) -> pd.DataFrame:
        """The trials of one study, rebuilt only when they changed.

        Whether they changed is looked at most every `RECHECK_SECONDS`: a page load fires
        half a dozen callbacks at once, and at 100,000 trials each look costs 0.1 s.
        """
        with self._lock:
            cached = self._frames.get(name)
            if cached is not None and time.monotonic() - self._checked[name] < RECHECK_SECONDS:
                return cached[1]
            study = load_study(self.storage(), name)
            trials = study.get_trials(deepcopy=False)
            signature = (len(trials), tuple(sorted(Counter(t.state.name for t in trials)
                                                   .items())))
            if cached is None or cached[0] != signature:
                self._frames[name] = (signature, trials_frame(study))
            self._checked[name] = time.monotonic()
            return self._frames[name][1]

    def frames(self, names: list[str]) -> pd.DataFrame:
        """Several studies stacked (unknown names are skipped: the page reports them)."""
        known = set(self.names())
        parts = [self.frame(name) for name in names if name in known]
        parts = [part for part in parts if len(part)]
        if len(parts) == 1:
            return parts[0]  # the cached frame itself (read only): a copy of 100,000 rows
            # costs 0.1 s in each callback that reads it
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)

    def points(self, names: list[str], filters: Filters) -> pd.DataFrame:
        """`plot_points` of the studies `names`, the evaluated trials kept until one changes:
        the plot, the table and the options all start from them."""
        frame = self.frames(names)
        return filtered(self.derived("evaluated", names, lambda: evaluated(frame)), filters)

    def derived(self, kind: str, names: list[str], compute: Callable[[], Any]) -> Any:
        """`compute()` for the studies `names`, kept until one of them changes (read their
        frames first): what does not depend on the filters, such as the hypervolume lines,
        is not recomputed when only the filters do."""
        key = (tuple(names), self.signature(names))
        cached = self._derived.get(kind)
        if cached is None or cached[0] != key:
            cached = (key, compute())
            self._derived[kind] = cached
        return cached[1]

    def signature(self, names: list[str]) -> str:
        """Changes whenever a selected study gains a trial or a trial changes state."""
        return "|".join(f"{name}:{key}" for name in sorted(names)
                        for key, _ in [self._frames.get(name, (None, None))])


def plot_points(frame: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The evaluated trials that pass the filters, with the columns the plot and hover need."""
    return filtered(evaluated(frame), filters)


def evaluated(frame: pd.DataFrame) -> pd.DataFrame:
    """The evaluated trials with an accuracy and Mult-Adds, in the columns the page shows."""
    points = completed(frame)
    if points.empty:
        return pd.DataFrame(columns=PLOT_COLUMNS)
    return points.dropna(subset=["val_accuracy", "madds"])[PLOT_COLUMNS]


def filtered(points: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The rows of `evaluated` points that pass the filters (`points` itself when none is
    set: read only)."""
    if filters == Filters():
        return points
    keep = pd.Series(True, index=points.index)
    if filters.max_madds_m is not None:
        keep &= points["madds"] <= filters.max_madds_m * 1e6
    if filters.min_accuracy is not None:
        keep &= points["val_accuracy"] >= filters.min_accuracy
    if filters.block_types:
        keep &= points["block_types"].isin(filters.block_types)
    if filters.alphas:
        keep &= points["alpha"].isin(filters.alphas)
    if filters.resolutions:
        keep &= points["resolution"].isin(filters.resolutions)
    return points.loc[keep]


def filter_options(frame: pd.DataFrame) -> dict[str, list]:
    """The values each categorical filter can take, from the evaluated trials."""
    points = completed(frame)
    if points.empty:
        return {"block_types": [], "alphas": [], "resolutions": []}
    return {"block_types": sorted(points["block_types"].dropna().unique().tolist()),
            "alphas": sorted(points["alpha"].dropna().unique().tolist()),
            "resolutions": sorted(int(v) for v in points["resolution"].dropna().unique())}


def state_counts(frame: pd.DataFrame) -> str:
    """'3 complete, 1 running' — what an empty state says is in the study."""
    if frame.empty:
        return "no trials"
    counts = frame["state"].value_counts()
    return ", ".join(f"{count} {state.lower()}" for state, count in counts.items())


def find_trial(frame: pd.DataFrame, study: str, number: int) -> pd.Series | None:
    """The row of trial `number` of `study`, or None."""
    rows = frame[(frame["study"] == study) & (frame["number"] == number)]
    return rows.iloc[0] if len(rows) else None

