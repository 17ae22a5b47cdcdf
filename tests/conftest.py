import os

# The tests exercise the TensorFlow backend in-process; the JAX comparison runs in
# a subprocess with its own KERAS_BACKEND.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# Small but complete networks: every stage, every norm, fast on 2 CPU cores.
SMALL = dict(width_coefficient=0.25, depth_coefficient=0.34, num_classes=10)
