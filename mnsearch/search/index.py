"""A worker's view of its study, kept current by reading only what changed.

A sweep asks the same questions about its study many times per trial: is the sweep done, who
owns this configuration, what did the other trials reach at this rung, which trials left the
front. Answered by scanning `study.get_trials()`, each question costs O(trials) — 10 ms at
100,000 trials on a journal, more through Optuna's RDB cache, which sorts every read — and a
sweep slows down as its study grows. `StudyIndex` answers them from indexes it updates
incrementally, with Optuna's public storage calls:

- new trials: `get_trial_id_from_study_id_trial_number` for the numbers after the last one
  seen (trial numbers grow by one), then `get_trial`;
- changed trials: only unfinished (waiting or running) trials can change — Optuna refuses any
  write to a finished trial — so `refresh` reads those again, one `get_trial` each.

Both are O(1) per call on a journal (its replay is in memory) and one indexed query on an RDB
(`_CachedStorage` answers finished trials from its cache). Optuna offers no "changed since"
read of its own: its RDB cache reads incrementally from the database but then filters and
sorts every trial in Python at each `get_trials`, and its journal lists every trial.

A refresh costs O(new + unfinished) storage reads, not O(trials); the first one reads the whole
study once. `tests/search/test_index.py` checks the indexes against a full re-read after every
change of random histories (a property test).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from mnsearch.pareto import as_losses, pareto_mask
from mnsearch.search.early_stopping import count_dominating
from mnsearch.search.record import FIELDS, TrialRecord

_RUNG = "rung_"
_BATCH = 64  # new complete trials from which one `pareto_mask` beats one-by-one updates


class RungTable:
    """The accuracies trials recorded at one rung, with their costs, as growing arrays (a
    dominance count over them is one vectorised comparison, not a Python loop)."""

    def __init__(self, cost_names: Sequence[str]) -> None:
        self.cost_names = tuple(cost_names)
        self.size = 0
        self._rows: dict[int, int] = {}  # trial number -> its row
        self._numbers = np.empty(64, dtype=np.int64)
        self._accuracy = np.empty(64)
        self._costs = np.empty((64, len(self.cost_names)))

    def set(self, number: int, accuracy: float, costs: Sequence[float | None]) -> None:
        """Record trial `number` at this rung, or overwrite its row: a running trial may write
        its rung again (a value or a cost rewritten), and the table must hold the latest."""
        row = self._rows.get(number)
        if row is None:
            if self.size == len(self._accuracy):  # amortised growth
                self._numbers = np.resize(self._numbers, 2 * self.size)
                self._accuracy = np.resize(self._accuracy, 2 * self.size)
                self._costs = np.resize(self._costs, (2 * self.size, len(self.cost_names)))
            row = self._rows[number] = self.size
            self.size += 1
        self._numbers[row] = number
        self._accuracy[row] = accuracy
        self._costs[row] = [np.inf if value is None else value for value in costs]

    def dominating(self, accuracy: float, costs: Sequence[float], number: int) -> int:
        """How many trials other than `number` reached more than `accuracy` here for no more
        cost (`costs` in `cost_names` order; a cost a trial lacks counts as infinite)."""
        others = self._numbers[:self.size] != number
        return count_dominating(accuracy, costs, self._accuracy[:self.size][others],
                                self._costs[:self.size][others])


class StudyIndex:
    """The trials of one study and the indexes a worker asks, updated by `refresh`."""

    def __init__(self, study: optuna.Study, cost_names: Sequence[str] = ("madds",)) -> None:
        self.study = study
        self.cost_names = tuple(name for name in cost_names if name in FIELDS)
        self.trials: dict[int, FrozenTrial] = {}  # by number: the latest read
        self.counts: Counter[TrialState] = Counter()
        self._unfinished: set[int] = set()
        self.finished_order: list[int] = []  # numbers, in the order they were seen finished
        self._by_key: defaultdict[str, set[int]] = defaultdict(set)  # config_key → numbers
        self._finished_keys: set[str] = set()  # keys of finished, not failed trials
        self._rungs: dict[int, RungTable] = {}
        self._front: dict[int, Sequence[float]] = {}  # complete trials on the Pareto front
        self._losses = np.empty((0, len(study.directions)))  # the front's, as losses
        self._directions = [direction.name.lower() for direction in study.directions]
        self._first = True

    # Optuna has no public handle on a study's storage and id (claims and locks use the same).
    @property
    def _storage(self) -> optuna.storages.BaseStorage:
        return self.study._storage

    def refresh(self) -> list[FrozenTrial]:
        """Read the trials that are new or may have changed; returns those that did."""
        if self._first:  # one full read; afterwards only what can change
            self._first = False
            changed = list(self.study.get_trials(deepcopy=False))
        else:
            changed = [trial for trial in self._reread_unfinished() if trial is not None]
            changed += self._read_new()
        for trial in changed:
            self._update(trial)
        self._update_front([trial for trial in changed if trial.state == TrialState.COMPLETE
                            and trial.values is not None
                            and TrialRecord.field_of(trial, "duplicate_of") is None])
        return changed

    def in_states(self, *states: TrialState) -> list[FrozenTrial]:
        """Trials in these states, by number; unfinished states are read from the small
        unfinished set, finished ones need a scan."""
        if all(not state.is_finished() for state in states):
            numbers: Iterable[int] = sorted(self._unfinished)
        else:
            numbers = sorted(self.trials)
        return [self.trials[number] for number in numbers
                if self.trials[number].state in states]

    def with_key(self, key: str) -> list[FrozenTrial]:
        """Trials that recorded `key` as their configuration (any state, any role)."""
        return [self.trials[number] for number in sorted(self._by_key.get(key, ()))]

    @property
    def finished_keys(self) -> int:
        """How many distinct configurations finished (complete, stopped early or rejected)."""
        return len(self._finished_keys)

    def rung(self, epoch: int) -> RungTable:
        """Every trial's accuracy at rung `epoch`, with its costs."""
        return self._rungs.setdefault(epoch, RungTable(self.cost_names))

    def front(self) -> dict[int, Sequence[float]]:
        """The complete trials on the Pareto front of the study's objectives, by number, with
        their values (answers from the record, `duplicate_of`, left out: they tie their
        original, which is there)."""
        return dict(self._front)

    def _reread_unfinished(self) -> list[FrozenTrial | None]:
        changed: list[FrozenTrial | None] = []
        for number in sorted(self._unfinished):
            old = self.trials[number]
            new = self._storage.get_trial(old._trial_id)
            changed.append(None if _same(old, new) else new)
        return changed

    def _read_new(self) -> list[FrozenTrial]:
        study_id, new = self.study._study_id, list[FrozenTrial]()
        while True:
            try:
                trial_id = self._storage.get_trial_id_from_study_id_trial_number(
                    study_id, len(self.trials) + len(new))
            except KeyError:
                return new
            new.append(self._storage.get_trial(trial_id))

    def _update(self, trial: FrozenTrial) -> None:
        old = self.trials.get(trial.number)
        if old is not None:
            self.counts[old.state] -= 1
        self.trials[trial.number] = trial
        self.counts[trial.state] += 1
        if trial.state.is_finished():
            self._unfinished.discard(trial.number)
            self.finished_order.append(trial.number)
        else:
            self._unfinished.add(trial.number)
        key = TrialRecord.field_of(trial, "config_key")
        earlier = TrialRecord.field_of(old, "config_key") if old is not None else None
        if earlier is not None and earlier != key:  # rewritten while running: not its key now
            self._by_key[earlier].discard(trial.number)
        if key is not None:
            self._by_key[key].add(trial.number)
            if trial.state.is_finished() and trial.state != TrialState.FAIL:
                self._finished_keys.add(key)
        self._update_rungs(trial, old)

    def _update_rungs(self, trial: FrozenTrial, old: FrozenTrial | None) -> None:
        """Rows for the rungs `trial` reached since `old`, and for those whose value or costs
        it rewrote."""
        seen = old.user_attrs if old is not None else {}
        costs = [TrialRecord.field_of(trial, cost) for cost in self.cost_names]
        same_costs = old is not None and costs == [TrialRecord.field_of(old, cost)
                                                   for cost in self.cost_names]
        for name, accuracy in trial.user_attrs.items():
            if not (name.startswith(_RUNG) and name[len(_RUNG):].isdigit()):
                continue
            if name not in seen or seen[name] != accuracy or not same_costs:
                self.rung(int(name[len(_RUNG):])).set(trial.number, accuracy, costs)

    def _update_front(self, complete: list[FrozenTrial]) -> None:
        """The front of (front ∪ newly complete): a trial dominated once stays dominated
        (whatever dominates it is itself dominated only by points that dominate it too).

        A few new trials are compared with the front one by one (O(front) each: a front of
        many ties, hundreds of points, made a full `pareto_mask` per refresh cost ~10 ms);
        a large batch (the first read) takes one `pareto_mask`.
        """
        if len(complete) > _BATCH:
            numbers = [*self._front, *(trial.number for trial in complete)]
            values = np.array([*self._front.values(), *(trial.values for trial in complete)],
                              dtype=float)
            mask = pareto_mask(values, self._directions)
            self._front = {number: tuple(row) for number, row, keep in
                           zip(numbers, values, mask, strict=True) if keep}
            self._losses = as_losses(np.array(list(self._front.values()), dtype=float),
                                     self._directions)
            return
        for trial in complete:
            self._add_to_front(trial.number, trial.values)

    def _add_to_front(self, number: int, values: Sequence[float]) -> None:
        loss = as_losses(np.array([values], dtype=float), self._directions)[0]
        front = self._losses
        if len(front):
            if np.any(np.all(front <= loss, axis=1) & np.any(front < loss, axis=1)):
                return  # dominated
            kept = ~(np.all(loss <= front, axis=1) & np.any(loss < front, axis=1))
            self._front = {key: row for (key, row), keep in
                           zip(self._front.items(), kept, strict=True) if keep}
            front = front[kept]
        self._front[number] = tuple(float(value) for value in values)
        self._losses = np.vstack([front.reshape(-1, len(loss)), loss])


def _same(old: FrozenTrial, new: FrozenTrial) -> bool:
    """Whether a re-read trial is unchanged (a journal hands back the same object then)."""
    return new is old or (new.state == old.state and new.user_attrs == old.user_attrs
                          and new.params == old.params and new.values == old.values
                          and new.system_attrs == old.system_attrs)
