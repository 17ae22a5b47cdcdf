"""Runs in a subprocess under another KERAS_BACKEND (see test_backends.py).

Builds the same small models, loads the weights the TensorFlow run saved, and
writes this backend's outputs, in inference and in training mode.
"""

import json
import sys

import numpy as np


def main(job_file: str) -> None:
    import keras

    from effnet_lib import build_model

    job = json.load(open(job_file))
    images = np.load(job["images"])
    outputs = {}
    for name, weights in job["models"].items():
        model = build_model(name, **job["build"])
        model.load_weights(weights)
        outputs[f"{name}/infer"] = model.predict(images, batch_size=len(images), verbose=0)
        outputs[f"{name}/train"] = np.asarray(_training_call(model, images))
    np.savez(job["out"], backend=keras.backend.backend(), **outputs)


def _training_call(model, images):
    # Eager JAX dispatches op by op (slow); a compiled stateless call is the fast path.
    import jax

    @jax.jit
    def forward(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=True)[0]

    return forward([v.value for v in model.trainable_variables],
                   [v.value for v in model.non_trainable_variables], images)


if __name__ == "__main__":
    main(sys.argv[1])
