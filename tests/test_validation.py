"""Scoring weights on the validation split: evaluate() for one model, Validator for a run's
many weight sets (every epoch's, the final ones, the averages) with one traced step."""

import numpy as np
import pytest

from effnet_lib import build_model
from effnet_lib.training import checkpoints
from effnet_lib.training.evaluation import Validator, evaluate

from conftest import TINY


@pytest.fixture(scope="module")
def data(shapes_set):
    return f"shapes:{shapes_set(image_size=40, train=8, validation=12, classes=4, seed=3)}"


def test_a_validator_scores_weights_and_checkpoints_as_evaluate_does_with_one_traced_step(
        data, tmp_path, rng):
    model = build_model("B0-G16-GN", image_size=32, num_classes=4, **TINY)
    validator = Validator(model.effnet_spec, data, 32, batch_size=8)
    first = validator(model.get_weights())
    step = validator.model.test_function
    moved = [w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in model.get_weights()]
    second = validator(moved)
    assert validator.model.test_function is step  # the compiled step is reused, not re-traced
    assert second["loss"] != pytest.approx(first["loss"])  # the new weights were scored
    assert first == pytest.approx(evaluate(model, data, 32, batch_size=8))
    model.set_weights(moved)
    checkpoints.write(tmp_path / "moved", model, dict(epoch=1, updates=1))
    assert validator(tmp_path / "moved") == pytest.approx(second)  # a checkpoint folder too
    assert first["images"] == 12 and first["image_size"] == 32


def test_a_validator_refuses_endless_data_and_other_classes(data):
    spec = build_model("B0-G16-GN", image_size=32, num_classes=4, **TINY).effnet_spec
    with pytest.raises(ValueError, match="synthetic data, endless"):
        Validator(spec, "synthetic-host", 32)
    with pytest.raises(ValueError, match="its classes differ"):
        Validator(spec, data, 32, class_names=["a", "b", "c", "d"])
