"""BatchNorm computed by TensorFlow's fused kernel: Keras's layer, about twice as fast on a CPU.

Keras 3's ``BatchNormalization`` computes the batch moments and the normalisation as
separate operations on every backend. TensorFlow has one kernel that does the lot
(``FusedBatchNormV3``, and ``FusedBatchNormGradV3`` for its gradient, oneDNN-backed on
x86 CPUs). :class:`FusedBatchNormalization` is Keras's layer, with Keras's weights,
config and moving-average rule, that calls that kernel where it applies (TensorFlow,
4-D channels-last input, no mask, no renorm, not synchronised) and Keras's own code
everywhere else (JAX and torch, other ranks), so a model built with it loads, saves
and converts like one built with Keras's.

Measured (2 CPU cores, TF 2.21, batch 16, forward + backward of BN alone, median of 7):
112 px x 96 channels 537 ms with Keras's layer, 272 ms fused; 56 px x 144: 130 against
66 ms; 7 px x 1152: 6.3 against 5.9 ms. ``tests/test_fused_batch_norm.py`` checks that
outputs, gradients and moving statistics equal Keras's layer.
"""

from __future__ import annotations

import keras

# FusedBatchNormV3 refuses smaller epsilons (cuDNN's minimum, kept on every device).
SMALLEST_EPSILON = 1.001e-5
FUSED_DTYPES = ("float16", "bfloat16", "float32")


@keras.saving.register_keras_serializable(package="effnet_lib")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` that uses TensorFlow's fused kernel where it can."""

    def fuses(self, inputs, mask=None) -> bool:
        """Whether a call with these inputs runs the fused kernel."""
        return (keras.backend.backend() == "tensorflow" and mask is None
                and len(inputs.shape) == 4 and self.axis in (3, -1)
                and not self.renorm and not self.synchronized
                and self.epsilon >= SMALLEST_EPSILON
                and keras.backend.standardize_dtype(inputs.dtype) in FUSED_DTYPES)

    def call(self, inputs, training=None, mask=None):
        if not self.fuses(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        # The kernel takes float16/bfloat16 images with float32 statistics and computes in
        # float32, as Keras's layer does after its upcast.
        gamma = self.gamma if self.scale else tf.ones((channels,), "float32")
        beta = self.beta if self.center else tf.zeros((channels,), "float32")
        gamma, beta = tf.cast(gamma, "float32"), tf.cast(beta, "float32")
        if training and self.trainable:
            outputs, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, is_training=True)
            # The kernel returns the variance with Bessel's correction (TensorFlow 1's
            # moving-average rule); Keras's layer averages the biased one it normalised with.
            count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), "float32")
            variance = unbiased * tf.maximum(count - 1.0, 1.0) / count
            self.moving_mean.assign(self.moving_mean * self.momentum
                                    + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum
                                        + variance * (1.0 - self.momentum))
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, mean=tf.cast(self.moving_mean, "float32"),
                variance=tf.cast(self.moving_variance, "float32"), epsilon=self.epsilon,
                is_training=False)
        return tf.cast(outputs, self.compute_dtype)
