import os

# The tests exercise the TensorFlow backend in-process; the JAX comparison runs in
# a subprocess with its own KERAS_BACKEND.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


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
