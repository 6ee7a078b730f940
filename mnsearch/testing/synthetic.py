"""Synthetic studies: trials shaped like a sweep's, without training (tests, benchmarks, demos).

Every trial is a real preset (V1, V2 or V3-Small at some α and resolution) costed by the
analytic model, so Mult-Adds, params, block strings and specs are exact; only the accuracy,
the training curve, the time and the latency are made up (a noisy increasing function of
Mult-Adds), which is enough to exercise tables, figures and the dashboard at any size.
"""

from __future__ import annotations

import datetime
from dataclasses import replace
from functools import cache

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from mnsearch.cost import cost
from mnsearch.search.record import StudyRecord, TrialRecord
from mnsearch.spec.arch import spec_to_dict
from mnsearch.spec.blocks import format_block
from mnsearch.spec.families import preset

FAMILIES = ("v1", "v2", "v3-small")
ALPHAS = (0.25, 0.5, 0.75, 1.0)
RESOLUTIONS = (96, 128, 160, 192, 224)
DISTRIBUTIONS = {"family": CategoricalDistribution(FAMILIES),
                 "alpha": CategoricalDistribution(ALPHAS),
                 "resolution": CategoricalDistribution(RESOLUTIONS)}


@cache
def _architecture(family: str, alpha: float, resolution: int) -> dict:
    """User attributes a sweep records before training (cached: only 60 distinct points)."""
    spec = preset(family, alpha, resolution, num_classes=10)
    totals = cost(spec)
    return TrialRecord(spec=spec_to_dict(spec),
                       blocks=" ".join(format_block(block) for block in spec.blocks),
                       madds=totals.madds, params=totals.params,
                       params_keras=totals.params_keras, alpha=alpha,
                       resolution=resolution).attributes()


def synthetic_trial(number: int, rng: np.random.Generator,
                    state: TrialState = TrialState.COMPLETE) -> optuna.trial.FrozenTrial:
    """One made-up trial (see the module docstring); `number` only sets its start time."""
    params = {"family": str(rng.choice(FAMILIES)), "alpha": float(rng.choice(ALPHAS)),
              "resolution": int(rng.choice(RESOLUTIONS))}
    architecture = TrialRecord.from_attributes(
        _architecture(params["family"], params["alpha"], params["resolution"]))
    madds = float(architecture.madds or 0)
    accuracy = float(np.clip(0.55 + 0.05 * np.log(madds / 1e6) + rng.normal(0, 0.03),
                             0.05, 0.99))
    epochs = 3
    curve = [accuracy * (0.85 + 0.05 * epoch) for epoch in range(1, epochs + 1)]
    train_seconds = float(madds / 2e7 * rng.uniform(0.8, 1.2))
    trained = replace(architecture, curve=curve, epochs_done=epochs, train_seconds=train_seconds,
                      latency_ms=float(madds / 1e8 + rng.uniform(0.1, 0.3)),
                      phase_seconds={"setup": 0.5, "compile": 1.5, "train": train_seconds,
                                     "evaluate": 0.6, "checkpoint": 0.1, "callback": 0.05})
    values = None
    if state == TrialState.COMPLETE:
        trained = replace(trained, val_accuracy=accuracy, test_accuracy=accuracy - 0.01)
        values = [accuracy, madds]
    elif state == TrialState.FAIL:
        trained = replace(trained, error="loss became nan")
    elif state == TrialState.RUNNING:
        trained = replace(trained, curve=None, train_seconds=None, phase_seconds=None)
    attrs = trained.attributes()
    return _timed(create_trial(state=state, params=params, distributions=DISTRIBUTIONS,
                               values=values, user_attrs=attrs), number)


def synthetic_study(storage: optuna.storages.BaseStorage | str, name: str, trials: int,
                    seed: int = 0, failed: int = 0, running: int = 0) -> optuna.Study:
    """A study of `trials` complete trials (+ failed and running ones) recorded like a sweep's."""
    study = optuna.create_study(study_name=name, storage=storage,
                                directions=["maximize", "minimize"])
    StudyRecord(("accuracy", "madds"), "synthetic", "synthetic").write(study)
    rng = np.random.default_rng(seed)
    states = ([TrialState.COMPLETE] * trials + [TrialState.FAIL] * failed
              + [TrialState.RUNNING] * running)
    study.add_trials([synthetic_trial(number, rng, state)
                      for number, state in enumerate(states)])
    return study


def _timed(trial: optuna.trial.FrozenTrial, number: int) -> optuna.trial.FrozenTrial:
    """Spread start times a minute apart (create_trial stamps them all 'now')."""
    start = datetime.datetime(2025, 1, 1) + datetime.timedelta(minutes=number)
    trial.datetime_start = start
    if trial.state.is_finished():
        phases = TrialRecord.of(trial).phase_seconds
        seconds = sum(phases.values()) + 0.25 if phases else 1.0  # + time outside the run
        trial.datetime_complete = start + datetime.timedelta(seconds=seconds)
    return trial


def synthetic_final_study(storage: optuna.storages.BaseStorage | str, proxy: optuna.Study,
                          name: str | None = None, seed: int = 0) -> optuna.Study:
    """A final study (as `mnsearch finalize` makes) of every complete proxy trial: the same
    architecture, a made-up full-fidelity accuracy (the proxy's, raised, with rank noise)."""
    name = name or f"{proxy.study_name}-final"
    study = optuna.create_study(study_name=name, storage=storage,
                                directions=["maximize", "minimize"])
    StudyRecord(("accuracy", "madds"), "synthetic", "synthetic", proxy_study=proxy.study_name,
                recipe={"epochs": 5, "subset": None}).write(study)
    rng = np.random.default_rng(seed)
    trials = []
    for number, source in enumerate(proxy.get_trials(states=(TrialState.COMPLETE,))):
        answer = TrialRecord.of(source)
        accuracy = float(np.clip((answer.val_accuracy or 0) + 0.08 + rng.normal(0, 0.02),
                                 0.05, 0.995))
        final = replace(answer, proxy_trial=source.number, val_accuracy=accuracy,
                        test_accuracy=accuracy - 0.005, curve=[accuracy - 0.05, accuracy],
                        epochs_done=2)
        trials.append(_timed(create_trial(
            state=TrialState.COMPLETE, params=source.params, distributions=DISTRIBUTIONS,
            values=[accuracy, float(answer.madds or 0)], user_attrs=final.attributes()),
            number))
    study.add_trials(trials)
    return study
