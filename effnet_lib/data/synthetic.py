"""Synthetic data for throughput work, made on the host or inside the step.

``synthetic-host`` is the IPU kit's ``--synthetic-data cpu``: tf.data hands the
same random batch over and over, so the input pipeline costs nothing but the
transfer. ``synthetic-device`` is ``--synthetic-data ipu``: the data set carries
only labels and a layer at the model's input draws random images inside the
compiled step, so no image crosses from host to device at all. The benchmarks
use the same layer, so that they time the model and not an input pipeline.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def synthetic_dataset(image_size: int, batch_size: int, num_classes: int, *, on_device: bool,
                      soft: bool, seed: int | None = None) -> tf.data.Dataset:
    """An endless data set of ``(images or labels, labels)`` batches."""
    generator = tf.random.Generator.from_seed(seed) if seed is not None else tf.random.Generator.from_non_deterministic_state()
    labels = generator.uniform([batch_size], 0, num_classes, dtype=tf.int32)
    targets = tf.one_hot(labels, num_classes) if soft else labels
    if on_device:
        inputs = labels  # only the batch size travels; images are drawn in the step
    else:
        inputs = tf.cast(generator.uniform([batch_size, image_size, image_size, 3], 0, 256,
                                           dtype=tf.int32), tf.uint8)
    return tf.data.Dataset.from_tensors((inputs, targets)).repeat()


@keras.saving.register_keras_serializable(package="effnet_lib")
class SyntheticImages(keras.layers.Layer):
    """Random images in [0, 255], one batch per call, sized by the batch of its input.

    Images are data, not activations: they are float32 whatever the dtype policy
    (the model's own input normalisation casts them), unless ``dtype`` says otherwise.
    """

    def __init__(self, image_size: int, seed: int | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.image_size = image_size
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, batch_carrier):
        batch = keras.ops.shape(batch_carrier)[0]
        return keras.random.uniform((batch, self.image_size, self.image_size, 3), 0.0, 255.0,
                                    seed=self.generator)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.image_size, self.image_size, 3)

    def get_config(self):
        return {**super().get_config(), "image_size": self.image_size, "seed": self.seed}


def with_synthetic_images(model: keras.Model, image_size: int, seed: int | None = None) -> keras.Model:
    """``model`` behind a :class:`SyntheticImages` input: it takes labels and ignores them."""
    labels = keras.Input((), dtype="int32", name="batch_carrier")
    images = SyntheticImages(image_size, seed=seed, name="synthetic_images")(labels)
    return keras.Model(labels, model(images), name=f"{model.name}_synthetic_input")
