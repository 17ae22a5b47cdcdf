"""The model's own input normalisation: images in [0, 255] in, centred values out."""

from __future__ import annotations

import keras
from keras import ops

# The reference subtracts the ImageNet per-channel mean from [0, 255] pixels and
# does not divide by a standard deviation.
IMAGENET_MEAN_RGB = (123.68, 116.78, 103.94)


@keras.saving.register_keras_serializable(package="effnet_lib")
class ImageNormalization(keras.layers.Layer):
    """``(image - mean) * scale`` per channel, on images in [0, 255] of any dtype.

    ``mean`` and ``scale`` are non-trainable weights so that they travel with the
    model (and so that weights from a differently normalised model can be loaded).
    """

    def __init__(self, mean=IMAGENET_MEAN_RGB, scale=(1.0, 1.0, 1.0), **kwargs):
        super().__init__(**kwargs)
        self.initial_mean = [float(m) for m in mean]
        self.initial_scale = [float(s) for s in scale]
        if len(self.initial_mean) != len(self.initial_scale):
            raise ValueError("mean and scale need one value per channel each.")

    def build(self, input_shape):
        channels = len(self.initial_mean)
        if input_shape[-1] != channels:
            raise ValueError(f"ImageNormalization expects {channels} channels, "
                             f"got input shape {input_shape}.")
        self.mean = self.add_weight(name="mean", shape=(channels,), trainable=False,
                                    initializer=keras.initializers.Constant(self.initial_mean))
        self.scale = self.add_weight(name="scale", shape=(channels,), trainable=False,
                                     initializer=keras.initializers.Constant(self.initial_scale))

    def call(self, images):
        x = ops.cast(images, self.compute_dtype)
        return (x - ops.cast(self.mean, x.dtype)) * ops.cast(self.scale, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": self.initial_mean, "scale": self.initial_scale}
