"""Runs in a subprocess under another KERAS_BACKEND (see test_backends.py).

Builds the same small models, loads the weights the TensorFlow run saved, and
writes this backend's outputs, in inference and in training mode, and the weights after
two training steps with the recipe's optimiser (:func:`trained_weights`, which the
TensorFlow side runs too).
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
    labels = np.load(job["labels"])
    for name in job["trained"]:
        for i, weight in enumerate(trained_weights(name, job["build"], job["models"][name], images,
                                                   labels)):
            outputs[f"{name}/step/{i}"] = weight
    np.savez(job["out"], backend=keras.backend.backend(), **outputs)


def trained_weights(name, build, weights, images, labels, steps=2):
    """The weights after ``steps`` updates of the recipe's RMSprop (mean squares from 1,
    momentum, coupled weight decay) on one batch: what `effnet train` runs, on any backend."""
    from effnet_lib import build_model
    from effnet_lib.common.optimizer_slots import build_optimizer_slots
    from effnet_lib.training.evaluation import loss_for
    from effnet_lib.training.recipe import rmsprop

    model = build_model(name, **build)
    model.load_weights(weights)
    model.compile(optimizer=rmsprop(0.01, 0.9, 1e-3, 0.9, weight_decay=1e-5), loss=loss_for(False))
    build_optimizer_slots(model)  # as `effnet train` does: TensorFlow then traces the step once
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return [np.asarray(w) for w in model.get_weights()]


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
