"""Multi-objective sweeps with Optuna: one worker's loop, the objective, the early-stopping rule.

Each trial samples a point of the space, builds and costs the spec before any training
(constraint violations are rejected untrained), answers a configuration already trained with
the same recipe from the record (a sampler may re-propose it, a grid be enqueued twice; it is
never trained twice), waits for one that another worker is training (`search.claims`: the
check and the claim are one step under the study's lock, on any machine), and otherwise
trains at the space's fidelity. Objectives use validation accuracy; the test accuracy
is recorded for reporting only.

Early stopping in a Pareto search is the rung rule of `search.early_stopping` (Optuna refuses
`should_prune` for several objectives, optuna#3450); this module feeds it each trial's costs and
the accuracies other trials recorded at the same rung.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from mnsearch.cost import cost
from mnsearch.search.claims import owner_or_claim
from mnsearch.search.early_stopping import is_rung
from mnsearch.search.index import StudyIndex
from mnsearch.search.record import (
    COST_OBJECTIVES,
    OBJECTIVES,
    TrialRecord,
    record,
    record_rung,
)
from mnsearch.search.simulate import SIMULATED_INT8_DROP, simulate_training
from mnsearch.search.space import (
    LISTED_DIMENSION,
    SearchSpace,
    build_spec,
    check_satisfiable,
    violated_constraints,
)
from mnsearch.search.storage import beat, recover_stale_trials, worker_identity
from mnsearch.search.study import SweepOptions, config_key, open_study, recipe
from mnsearch.spec.arch import ArchSpec, spec_to_dict
from mnsearch.spec.blocks import SpecError, format_block
from mnsearch.train.checkpoint import CheckpointError, load_metadata
from mnsearch.train.data import PreparedDataCache
from mnsearch.train.loop import release_compiled_programs, train_and_evaluate

LIVE_SECONDS = 1.0  # a running trial's heartbeat and progress fields, at most this often


class Worker:
    """One process's sweep loop over a shared study."""

    def __init__(self, space: SearchSpace, options: SweepOptions, dataset: Any, rank: int = 0):
        self.space, self.options, self.dataset = space, options, dataset
        self.config = recipe(space, options)
        self.study = open_study(space, options, rank)  # rank: its own sampler stream
        self.grid_mode = (options.sampler or space.sampler) == "grid"
        self.trainings = 0
        self.data_cache = PreparedDataCache()  # trials at one resolution share their arrays
        self.cost_names = [OBJECTIVES[name].field for name in space.objectives
                           if name in COST_OBJECTIVES]
        self.index = StudyIndex(self.study, self.cost_names)  # what changed, not every trial
        self._cleaned = 0  # how far `_keep_front_checkpoints` went in `index.finished_order`
        self._front: set[int] = set()
        check_satisfiable(space, dataset.in_channels, dataset.num_classes,
                          dataset.image_size[0])

    def done(self) -> bool:
        """Whether the sweep is over, as of the index's last refresh."""
        counts = self.index.counts
        if self.grid_mode:
            return counts[TrialState.WAITING] == 0
        finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
        if self.options.trials is not None and finished >= self.options.trials:
            return True
        return self.index.finished_keys >= self.space.size  # the whole space is evaluated

    def run(self, deadline: float | None = None) -> None:
        while deadline is None or time.time() < deadline:
            self.index.refresh()
            if self.done():
                break
            if recover_stale_trials(self.study, self.index.in_states(TrialState.RUNNING)):
                self.index.refresh()
                if self.done():
                    break
            trial = self._ask()
            try:
                self.evaluate(trial)
            except KeyboardInterrupt:
                self.study.tell(trial, state=TrialState.FAIL)
                self.study.enqueue_trial(trial.params,
                                         user_attrs=TrialRecord(retry_of=trial.number).attributes())
                raise
            if not self.options.simulate:  # nothing compiled; gc.collect costs ~0.16 s
                release_compiled_programs()

    def _ask(self) -> optuna.Trial:
        """`study.ask()`, popping a waiting trial from the index instead of a scan.

        Optuna's ask lists the study's waiting trials to pop one, a scan of every trial (10 ms
        at 100,000) on each ask. This does what it does with the index's waiting trials:
        drop the samplers' per-ask cache of the study's trials, pop the first waiting trial
        that no other worker took (the storage's own check: `set_trial_state_values` to
        RUNNING is refused for a trial already taken), else create a trial; then wrap it.
        """
        cache = getattr(self.study, "_thread_local", None)
        if cache is None or not hasattr(cache, "cached_all_trials"):  # another Optuna
            return self.study.ask()
        cache.cached_all_trials = None  # Optuna's ask does this first ("sync once every trial")
        storage = self.study._storage
        for waiting in self.index.in_states(TrialState.WAITING):
            try:
                if storage.set_trial_state_values(waiting._trial_id, state=TrialState.RUNNING):
                    return optuna.Trial(self.study, waiting._trial_id)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # finished meanwhile (failed as stale, say)
        return optuna.Trial(self.study, storage.create_new_trial(self.study._study_id))

    def evaluate(self, trial: optuna.Trial) -> None:
        params = self._suggest(trial)
        try:
            spec = build_spec(self.space, params, in_channels=self.dataset.in_channels,
                              num_classes=self.dataset.num_classes,
                              dataset_resolution=self.dataset.image_size[0])
        except SpecError as error:  # e.g. a resolution too small for the stride schedule
            record(trial, rejected=str(error))
            self.study.tell(trial, state=TrialState.PRUNED)
            return
        totals, key = cost(spec), config_key(spec, self.config, self.dataset.name)
        # No config_key yet: on a running trial it is the claim (`search.claims`).
        record(trial, spec=spec_to_dict(spec),
               blocks=" ".join(format_block(block) for block in spec.blocks),
               madds=totals.madds, params=totals.params, params_keras=totals.params_keras,
               alpha=spec.alpha, resolution=spec.resolution, worker=worker_identity(),
               recipe=asdict(self.config), proxy_trial=params.get(LISTED_DIMENSION))
        beat(trial)
        latency = self._latency(spec)
        if latency is not None:
            record(trial, latency_ms=latency)
        broken = violated_constraints(self.space, spec, latency)
        if broken:
            record(trial, rejected="; ".join(broken), config_key=key)  # rejected first
            self.study.tell(trial, state=TrialState.PRUNED)
            return
        earlier = self._record(key, trial)
        if earlier is not None:
            self._answer(trial, key, earlier)
            return
        self._train(trial, spec, totals, latency)

    def _suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's point of the space. A listed space (`mnsearch finalize`) names its
        architectures by proxy trial number, an integer parameter: a categorical one could not
        grow when a later finalize adds trials to the same study (Optuna refuses categorical
        choices that change within a study)."""
        if self.space.listed is not None:
            return {LISTED_DIMENSION: trial.suggest_int(LISTED_DIMENSION, 0, 2**31 - 1)}
        return {name: trial.suggest_categorical(name, choices)
                for name, choices in sorted(self.space.choices.items())}

    def _latency(self, spec: ArchSpec) -> float | None:
        """Median batch-1 XLA latency on this machine, when an objective or constraint uses it.

        Measured before training (like the cost), so a too-slow model is rejected untrained.
        With --jobs N the other workers load the CPU while this one measures: latency searches
        are best run with one worker per machine.
        """
        if "latency" not in self.space.objectives and \
                "max_latency_ms" not in self.space.constraints:
            return None
        from mnsearch.nn.latency import measure_latency

        return measure_latency(spec, batch_size=1, runtime="xla", repeats=20).latency_ms

    def _record(self, key: str, trial: optuna.Trial) -> optuna.trial.FrozenTrial | None:
        """The finished trial of the same configuration, waited for if it is running
        elsewhere; None once `trial` has claimed the configuration (it is to train it)."""
        return owner_or_claim(self.study, trial, key, self.index)

    def _answer(self, trial: optuna.Trial, key: str, earlier: optuna.trial.FrozenTrial) -> None:
        """Finish `trial` as `earlier` finished: the same spec, recipe and data give the same
        result. `duplicate_of` is written before `config_key`, so no one takes it for a claim;
        rungs are not copied (the early-stopping rule would count the same curve twice)."""
        answer = TrialRecord.of(earlier)
        record(trial, duplicate_of=earlier.number, config_key=key,
               val_accuracy=answer.val_accuracy, test_accuracy=answer.test_accuracy,
               int8_accuracy=answer.int8_accuracy,
               train_seconds=answer.train_seconds, curve=answer.curve)
        if earlier.state == TrialState.COMPLETE:
            self.study.tell(trial, earlier.values)
        else:  # stopped early: so is its duplicate
            self.study.tell(trial, state=TrialState.PRUNED)

    def _train(self, trial: optuna.Trial, spec: ArchSpec, totals: Any,
               latency: float | None) -> None:
        self.trainings += 1
        folder = Path(self.options.artifacts) / self.options.study_name / f"trial-{trial.number}"
        resume = self._take_over_checkpoint(trial, folder)
        costs = {"madds": totals.madds, "params": totals.params, "latency_ms": latency}
        shown = time.monotonic()

        def on_epoch(epoch: int, result: Any) -> bool:
            """Record the rung, and at most once a second the heartbeat and the live display's
            fields (a simulated or tiny trial's epochs take microseconds: each record is a
            storage write)."""
            nonlocal shown
            accuracy = result.val_accuracy[-1]
            if is_rung(epoch + 1, self.config.epochs):
                record_rung(trial, epoch + 1, accuracy)
            if time.monotonic() - shown >= LIVE_SECONDS:
                shown = time.monotonic()
                beat(trial)
                record(trial, epochs_done=epoch + 1,
                       images_per_second=round(result.images_per_second, 1))
            return self.options.early_stopping and self._should_stop(trial, epoch + 1, accuracy,
                                                                    costs)

        run = simulate_training if self.options.simulate else train_and_evaluate
        if not self.options.simulate:
            record(trial, checkpoint=str((folder / "checkpoint.npz").resolve()))
        result = run(spec, self.dataset, self.config, folder, resume=resume, callback=on_epoch,
                     data_cache=self.data_cache)
        record(trial, curve=result.val_accuracy, train_seconds=result.train_seconds,
               epochs_done=result.epochs_done, phase_seconds=result.phase_seconds)
        if result.status == "failed":
            record(trial, error=result.error)
            self.study.tell(trial, state=TrialState.FAIL)
        elif result.status == "stopped":
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            int8 = self._int8_accuracy(spec, folder / "checkpoint.npz", result.val_accuracy[-1])
            record(trial, val_accuracy=result.val_accuracy[-1],
                   test_accuracy=result.test_accuracy, int8_accuracy=int8)
            final = TrialRecord(val_accuracy=result.val_accuracy[-1], madds=totals.madds,
                                params=totals.params, latency_ms=latency, int8_accuracy=int8)
            self.study.tell(trial, [final.objective_value(name)
                                    for name in self.space.objectives])
        self._keep_front_checkpoints()

    def _take_over_checkpoint(self, trial: optuna.Trial, folder: Path) -> bool:
        """Whether `trial` resumes: a retry (its earlier attempt's worker was killed, see
        `recover_stale_trials`) continues from that attempt's checkpoint, its folder renamed to
        the retry's (an atomic move: a second taker finds nothing), so a killed final run of
        hours loses at most an epoch, here or on a machine the artifacts folder was copied to.
        The same parameters in the same study give the same recipe: the checkpoint fits."""
        earlier = TrialRecord.field_of(trial, "retry_of")
        if earlier is None or self.options.simulate or folder.exists():
            return False
        attempt = folder.parent / f"trial-{earlier}"
        try:
            epochs = load_metadata(attempt / "checkpoint.npz")["result"]["epochs_done"]
            if not (attempt / "checkpoint.npz").is_file():
                return False
            attempt.rename(folder)
        except (CheckpointError, OSError, KeyError, TypeError):
            return False  # no checkpoint (killed in its first epoch), or taken meanwhile
        record(trial, resumed_epochs=epochs)
        return True

    def _int8_accuracy(self, spec: ArchSpec, checkpoint: Path,
                       float_accuracy: float) -> float | None:
        """Validation accuracy of the int8 model, when an objective asks for it."""
        if "int8_accuracy" not in self.space.objectives:
            return None
        if self.options.simulate:
            return float_accuracy - SIMULATED_INT8_DROP
        from mnsearch.train.int8 import validation_int8

        return validation_int8(spec, checkpoint, self.dataset, self.config).int8_accuracy

    def _should_stop(self, trial: optuna.Trial, epoch: int, accuracy: float,
                     costs: dict[str, float | None]) -> bool:
        """`early_stopping.should_stop` against every other trial's accuracy at this rung,
        counted over the index's table of the rung (a cost of ours not measured cannot be
        beaten, hence infinite)."""
        if not is_rung(epoch, self.config.epochs):
            return False
        self.index.refresh()
        own = [math.inf if (value := costs[name]) is None else value for name in self.cost_names]
        beaten_by = self.index.rung(epoch).dominating(accuracy, own, trial.number)
        return beaten_by >= self.options.min_dominating

    def _keep_front_checkpoints(self) -> None:
        """Delete checkpoints of trials that left the Pareto front (they cannot be exported),
        and of trials stopped early or failed: those finished, or off the front, since the
        last call (every trial at the first), from the index.

        A listed space's (`mnsearch finalize`) are all kept: few, costly, each chosen by hand.
        A killed attempt's are kept while its retry waits or runs: the retry resumes from it.
        """
        self.index.refresh()
        front = set(self.index.front())
        finished = self.index.finished_order[self._cleaned:]
        self._cleaned += len(finished)
        gone = [number for number in finished
                if self.index.trials[number].state != TrialState.COMPLETE]
        if self.space.listed is None:
            gone += [number for number in finished if number not in front]
            gone += sorted(self._front - front)
        self._front = front
        retried = {TrialRecord.field_of(trial, "retry_of") for trial in
                   self.index.in_states(TrialState.WAITING, TrialState.RUNNING)}
        root = Path(self.options.artifacts) / self.options.study_name
        for number in set(gone) - retried:
            if (root / f"trial-{number}").exists():
                shutil.rmtree(root / f"trial-{number}", ignore_errors=True)
