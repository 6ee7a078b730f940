"""Configuration keys survive new recipe fields: a study started before a field was added
resumes with the keys it recorded, so nothing is trained twice."""

from dataclasses import asdict, fields

import optuna
import pytest

from mnsearch.search.finalize import FinalizeError, FinalizeOptions, Selection, _check_final_study
from mnsearch.search.record import StudyRecord
from mnsearch.search.storage import open_storage
from mnsearch.search.study import config_key
from mnsearch.spec.families import preset
from mnsearch.train.config import ADDED_FIELDS, TrainConfig, recipe_identity, with_added_fields

SPEC = preset("v1", alpha=0.25, resolution=16, num_classes=10, in_channels=1,
              stride_schedule="stem1")
# Computed with the code of commit a6fe034, before `erasing` was added to TrainConfig.
KEYS_BEFORE_ERASING = {
    TrainConfig(): "b509155302c9c210b492",
    TrainConfig(epochs=3, subset=4000, batch_size=128): "6b253a456934c200c9ec",
}


@pytest.mark.parametrize(("config", "key"), KEYS_BEFORE_ERASING.items())
def test_keys_recorded_before_a_field_was_added_are_unchanged(config, key):
    assert config_key(SPEC, config, "fashion-mnist") == key


def test_an_added_field_away_from_its_old_value_changes_the_key():
    assert config_key(SPEC, TrainConfig(erasing=0.5), "fashion-mnist") != \
        KEYS_BEFORE_ERASING[TrainConfig()]
    assert recipe_identity(TrainConfig(erasing=0.5))["erasing"] == 0.5


def test_added_fields_default_to_their_old_value():
    """A field whose default is not its old value would change every result recorded."""
    defaults = {field.name: field.default for field in fields(TrainConfig)}
    assert all(defaults[name] == value for name, value in ADDED_FIELDS.items())
    assert "erasing" not in recipe_identity(TrainConfig())


def _final_study(tmp_path, recipe):
    storage = open_storage(str(tmp_path / "s.journal"))
    study = optuna.create_study(study_name="toy-final", storage=storage,
                                directions=["maximize", "minimize"])
    StudyRecord(dataset="fashion-mnist", proxy_study="toy", recipe=recipe).write(study)
    return FinalizeOptions(study_name="toy", selection=Selection(trials=(0,)),
                           storage=str(tmp_path / "s.journal"))


def test_a_final_study_recorded_before_a_field_was_added_resumes(tmp_path):
    old = {name: value for name, value in asdict(TrainConfig()).items()
           if name not in ADDED_FIELDS}
    assert with_added_fields(old) == asdict(TrainConfig())
    options = _final_study(tmp_path, old)
    _check_final_study(options, StudyRecord(dataset="fashion-mnist", proxy_study="toy",
                                            recipe=asdict(TrainConfig())))
    with pytest.raises(FinalizeError, match="was trained with erasing=0.0"):
        _check_final_study(options, StudyRecord(dataset="fashion-mnist", proxy_study="toy",
                                                recipe=asdict(TrainConfig(erasing=0.5))))
