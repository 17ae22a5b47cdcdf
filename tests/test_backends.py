"""The same model code runs on JAX (the GPU machines here have JAX, not TensorFlow)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from effnet_lib import build_model

from conftest import SMALL

NORMS = ["BN", "GN", "LN", "GN_PN", "LN_PN"]
BUILD = dict(image_size=40, dropout_rate=0.0, drop_connect_rate=0.0, **SMALL)


@pytest.mark.slow
@pytest.mark.subprocess
def test_jax_backend_matches_tensorflow(tmp_path, rng):
    pytest.importorskip("jax", reason="install the dev extra (jax[cpu]) to compare backends")
    images = rng.uniform(0, 255, (3, 40, 40, 3)).astype("float32")
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

    job = dict(images=str(tmp_path / "images.npy"), models=weights, build=BUILD,
               out=str(tmp_path / "jax.npz"))
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    worker = Path(__file__).with_name("backend_worker.py")
    run = subprocess.run([sys.executable, str(worker), str(tmp_path / "job.json")], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]

    got = np.load(tmp_path / "jax.npz")
    assert str(got["backend"]) == "jax"
    for key, value in expected.items():
        scale = np.abs(value).max()
        assert scale > 1e-3, key
        np.testing.assert_allclose(got[key], value, atol=2e-4 * max(1.0, scale), err_msg=key)
