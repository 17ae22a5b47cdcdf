"""The same model code runs on JAX (the GPU machines here have JAX, not TensorFlow)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from effnet_lib import build_model

from backend_worker import trained_weights
from conftest import TINY

# BatchNorm (batch statistics in training, moving ones in inference) and LN_PN: Keras's
# GroupNormalization (GN and LN are the same layer, GN with 4 groups, LN with one) followed by
# this kit's Proxy Norm (the same layer after GN).
NORMS = ["BN", "LN_PN"]
TRAINED = ["B0-G16-LN_PN"]  # also trained for two steps on both backends (the custom layers)
# The tiny model: every stage and every custom layer, one block per stage (so no identity
# skips, a keras Add on either backend). The 10-block model this test built before took 96 s
# alone, this one 55 s: the compiles on both sides grow with the blocks.
BUILD = dict(image_size=32, dropout_rate=0.0, drop_connect_rate=0.0, num_classes=10, **TINY)


@pytest.mark.slow
@pytest.mark.subprocess
def test_jax_backend_matches_tensorflow(tmp_path, rng):
    pytest.importorskip("jax", reason="install the dev extra (jax[cpu]) to compare backends")
    images = rng.uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    expected, weights = {}, {}
    for norm in NORMS:
        name = f"B0-G16-{norm}"
        model = build_model(name, **BUILD)
        # Move every weight off its initial value so that all of them matter.
        model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype)
                           for w in model.get_weights()])
        weights[name] = str(tmp_path / f"{norm}.weights.h5")
        model.save_weights(weights[name])
        expected[f"{name}/infer"] = np.asarray(model(images, training=False))
        expected[f"{name}/train"] = np.asarray(model(images, training=True))

    labels = rng.integers(0, BUILD["num_classes"], len(images))
    np.save(tmp_path / "labels.npy", labels)
    for name in TRAINED:
        for i, weight in enumerate(trained_weights(name, BUILD, weights[name], images, labels)):
            expected[f"{name}/step/{i}"] = weight
    job = dict(images=str(tmp_path / "images.npy"), labels=str(tmp_path / "labels.npy"),
               models=weights, trained=TRAINED, build=BUILD, out=str(tmp_path / "jax.npz"))
    (tmp_path / "job.json").write_text(json.dumps(job))
    # XLA's LLVM passes at level 0: the worker's compiles (every initialiser shape, the two
    # forward passes, the training step) took 50 s instead of 87 s for a 10-block model; the
    # arithmetic is the same (no fast-math at either level).
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags}
    worker = Path(__file__).with_name("backend_worker.py")
    run = subprocess.run([sys.executable, str(worker), str(tmp_path / "job.json")], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]

    got = np.load(tmp_path / "jax.npz")
    assert str(got["backend"]) == "jax"
    for key, value in expected.items():
        if "/step/" in key:
            continue
        scale = np.abs(value).max()
        assert scale > 1e-3, key
        np.testing.assert_allclose(got[key], value, atol=2e-4 * max(1.0, scale), err_msg=key)
    # Training: JAX's two updates equal TensorFlow's to 1% of their size (a backend that did
    # not train, or applied the decay or the momentum differently, is off by far more).
    for name in TRAINED:
        model = build_model(name, **BUILD)
        model.load_weights(weights[name])
        initial = model.get_weights()
        moved = 0
        for i, start in enumerate(initial):
            tf_update = expected[f"{name}/step/{i}"] - start
            jax_update = got[f"{name}/step/{i}"] - start
            size = np.abs(tf_update).max()
            moved += size > 1e-6
            np.testing.assert_allclose(jax_update, tf_update, atol=1e-2 * size + 1e-7,
                                       err_msg=f"{name} weight {i}")
        assert moved > len(initial) // 2, name
