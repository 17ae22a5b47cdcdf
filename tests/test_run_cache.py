"""Trained runs reused only when everything that decides them is the same."""

import json

import pytest

from effnet_lib import load_case
from effnet_lib.lessons import run_cache

from conftest import TINY


@pytest.fixture(scope="module")
def shapes(shapes_set):
    return shapes_set(image_size=32, train=32, validation=16, classes=4, seed=3)


def tiny_case(**overrides):
    return load_case("B0-G16-GN-Native_16IPU_2x8").replace(
        micro_batch_size=8, gradient_accumulation_count=1, replicas=1, pipeline_stages=1,
        pipeline_splits=(), image_size=32, epochs=1, warmup_epochs=0, precision="32.32",
        **overrides)


def test_the_key_follows_every_setting_and_the_data(shapes):
    data = f"shapes:{shapes}"
    key = run_cache.run_key(tiny_case(), data, dict(seed=0))
    assert key == run_cache.run_key(tiny_case(), data, dict(seed=0))
    assert key != run_cache.run_key(tiny_case(weight_decay=0.0), data, dict(seed=0))
    assert key != run_cache.run_key(tiny_case(), data, dict(seed=1))
    assert key != run_cache.run_key(tiny_case(), "shapes", dict(seed=0))
    assert run_cache.data_identity(data)["train"] == 32


def test_the_key_tells_class_sets_apart(tmp_path):
    from effnet_lib.data.shapes import make_shapes

    made = {class_set: make_shapes(tmp_path / class_set, image_size=16, train=8, validation=4,
                                   classes=2, seed=0, progress=False, class_set=class_set)
            for class_set in ("fine", "distinct")}
    keys = {run_cache.run_key(tiny_case(), f"shapes:{path}", {}) for path in made.values()}
    assert len(keys) == 2


@pytest.mark.slow
def test_a_second_request_reuses_the_run_and_says_so(shapes, tmp_path):
    said = []
    options = dict(root=tmp_path, say=said.append, model_overrides=TINY)
    first = run_cache.cached_train(tiny_case(), f"shapes:{shapes}", **options)
    assert not first["reused"] and 0 <= first["validation"]["top1"] <= 1
    assert first["images_per_epoch"] == 32 and len(first["class_names"]) == 4
    (tmp_path / "other.partial").mkdir()  # an interrupted run is never taken for a finished one
    again = run_cache.cached_train(tiny_case(), f"shapes:{shapes}", **options)
    assert again["reused"] and again["run_dir"] == first["run_dir"]
    assert any("reusing the cached run" in line for line in said)
    assert again["validation"] == json.loads(open(f"{first['run_dir']}/validation.json").read())
