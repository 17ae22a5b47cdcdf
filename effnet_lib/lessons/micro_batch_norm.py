"""BatchNorm over micro-batches inside a larger batch: the paper's micro-batch, in one pass.

On the IPU each replica normalises its own micro-batch (B0: 12 images; B5: 2) while the
optimiser sees the mean gradient of the global batch (768), through gradient
accumulation and replicas. :class:`MicroBatchNormalization` computes the same thing
in one step over a batch of ``k x micro_batch_size`` images: each consecutive group of
``micro_batch_size`` images is normalised with its own mean and variance, and the
moving averages are updated once per group, in order, as ``k`` sequential micro-steps
would update them. The mean loss of the batch then has the mean gradient of ``k``
accumulated micro-steps, so micro-batch size is the *only* thing that changes: same
images, same updates, same learning rate.

GroupNorm, LayerNorm and Proxy Norm normalise each image alone: their computation does
not depend on the micro-batch at all.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="effnet_lib")
class MicroBatchNormalization(keras.layers.BatchNormalization):
    """``BatchNormalization`` whose training statistics are those of each micro-batch."""

    def __init__(self, micro_batch_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(micro_batch_size, int) and micro_batch_size >= 1):
            raise ValueError(f"micro_batch_size={micro_batch_size!r}: it must be an integer >= 1.")
        self.micro_batch_size = micro_batch_size

    def call(self, inputs, training=None, mask=None):
        if not training or self.axis not in (-1, len(inputs.shape) - 1):
            return super().call(inputs, training=False)
        shape = ops.shape(inputs)
        k = self.micro_batch_size
        x = ops.cast(inputs, "float32")
        grouped = ops.reshape(x, (-1, k, *inputs.shape[1:]))  # [groups, k, ..., C]
        axes = tuple(range(1, len(grouped.shape) - 1))
        mean = ops.mean(grouped, axis=axes, keepdims=True)
        var = ops.mean(ops.square(grouped - mean), axis=axes, keepdims=True)
        y = (grouped - mean) * ops.rsqrt(var + self.epsilon)
        if self.scale:
            y = y * ops.cast(self.gamma, "float32")
        if self.center:
            y = y + ops.cast(self.beta, "float32")
        self._update_moving(ops.reshape(mean, (-1, x.shape[-1])), ops.reshape(var, (-1, x.shape[-1])))
        return ops.cast(ops.reshape(y, shape), self.compute_dtype)

    def _update_moving(self, means, variances):
        # g sequential updates m <- d m + (1 - d) s_i collapse to
        # d^g m + (1 - d) sum_i d^(g - 1 - i) s_i.
        d = self.momentum
        groups = ops.shape(means)[0]
        powers = ops.cast(groups - 1 - ops.arange(groups), "float32")
        weights = ((1.0 - d) * ops.power(d, powers))[:, None]
        keep = ops.power(d, ops.cast(groups, "float32"))
        self.moving_mean.assign(keep * self.moving_mean + ops.sum(weights * means, axis=0))
        self.moving_variance.assign(keep * self.moving_variance
                                    + ops.sum(weights * variances, axis=0))

    def get_config(self):
        return {**super().get_config(), "micro_batch_size": self.micro_batch_size}
