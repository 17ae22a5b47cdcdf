import os

# The tests exercise the TensorFlow backend in-process; the JAX comparison runs in
# a subprocess with its own KERAS_BACKEND.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite runs in two worker processes (pytest-xdist): on a GPU machine the first would
# otherwise reserve all of the GPU's memory and the second fail to start TensorFlow there.
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
# Two workers on two cores: one TensorFlow thread per operation each (inherited by the
# processes and notebook kernels they start). With TensorFlow's default, a thread per core
# in each, the four threads contend for the two cores; measured on test_precisions.py:
# 118.6 s against 128.2 s.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# The kit's package first, as a user's program loads it: it sets what TensorFlow reads once
# at its own import (TF_ENABLE_ONEDNN_OPTS), whichever test module the worker collects first.
import effnet_lib  # noqa: E402,F401


def _start_rank(item) -> int:
    """Longest first: the notebooks' smoke run, then slow tests that start processes of
    their own, then the other slow tests, then the rest. With two workers taking tests in
    this order, the short tests fill the end and neither worker finishes long after the
    other."""
    if item.get_closest_marker("notebooks") and item.get_closest_marker("slow"):
        return 0
    if item.get_closest_marker("slow"):
        return 1 if item.get_closest_marker("subprocess") else 2
    return 3


def pytest_collection_modifyitems(config, items):
    items.sort(key=_start_rank)  # stable: file order within a rank


@pytest.fixture(scope="session", autouse=True)
def kit_folder_of_its_own(tmp_path_factory):
    """The suite never reads or writes the user's ``~/.cache/effnet-kit`` (data sets, the
    trained-run cache, the saved conv_impl choice): ``$EFFNET_DATA_DIR`` points at a fresh
    folder for the whole session, inherited by subprocesses and notebook kernels."""
    from effnet_lib.common.paths import DATA_DIR_VARIABLE

    previous = os.environ.get(DATA_DIR_VARIABLE)
    os.environ[DATA_DIR_VARIABLE] = str(tmp_path_factory.mktemp("effnet-kit-data"))
    yield
    if previous is None:
        os.environ.pop(DATA_DIR_VARIABLE, None)
    else:
        os.environ[DATA_DIR_VARIABLE] = previous


@pytest.fixture(scope="session")
def shapes_set(tmp_path_factory):
    """``shapes_set(image_size=.., train=.., validation=.., classes=.., seed=..)``: the one
    maker of the suite's drawn-shapes data sets; each set of parameters is drawn once per
    session and shared. Tests that damage a set damage a copy of it."""
    from effnet_lib.data.shapes import make_shapes

    made = {}

    def make(image_size: int, train: int, validation: int, classes: int = 4, seed: int = 0,
             class_set: str = "fine"):
        key = (image_size, train, validation, classes, seed, class_set)
        if key not in made:
            made[key] = make_shapes(tmp_path_factory.mktemp("shapes") / "set", image_size=image_size,
                                    train=train, validation=validation, classes=classes, seed=seed,
                                    class_set=class_set, progress=False)
        return made[key]

    return make


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# Small but complete networks: every stage, every norm, fast on 2 CPU cores.
SMALL = dict(width_coefficient=0.25, depth_coefficient=0.34, num_classes=10)
# The tiny model the training tests train (spec overrides, with the classes from the data).
TINY = dict(width_coefficient=0.25, depth_coefficient=0.25)
