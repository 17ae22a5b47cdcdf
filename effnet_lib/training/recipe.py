"""The paper's optimisation recipe in Keras: RMSprop, learning-rate schedules, weight decay.

* RMSprop with ``rho = 1 - global_batch * 2^-14``, ``epsilon = 1e-3``, momentum 0.9,
  and ``lr = 2^-14 * global_batch`` (``CaseConfig.learning_rate``, ``.rmsprop_rho``).
* Schedules, stepped by *weight updates* (Keras's ``optimizer.iterations``, which
  counts updates, not micro-batches, under gradient accumulation): linear warm-up
  then ``x0.97`` every 2.4 epochs; or a cosine from the peak to 0 (fine-tuning).
* Weight decay (``--weight-decay``) is decoupled and applied by the optimiser;
  L2 regularisation (``--l2-regularization``) adds ``lambda/2 * ||w||^2`` to the loss.
  With plain SGD both give the same update; with a stateful optimiser such as
  RMSprop they differ, because the L2 gradient also passes through the optimiser's
  state. Norm and Proxy Norm parameters (beta, gamma, their proxy versions) and
  moving statistics take neither, as in the reference.
"""

from __future__ import annotations

import math

import keras

NO_DECAY = ("beta", "gamma", "proxy_beta", "proxy_gamma", "moving_mean", "moving_variance")


@keras.saving.register_keras_serializable(package="effnet_lib")
class WarmupExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up over ``warmup_epochs``, then ``decay_rate`` every ``decay_epochs`` (staircase)."""

    def __init__(self, peak: float, updates_per_epoch: int, warmup_epochs: float = 5,
                 decay_rate: float = 0.97, decay_epochs: float = 2.4):
        self.peak = float(peak)
        self.updates_per_epoch = int(updates_per_epoch)
        self.warmup_epochs = float(warmup_epochs)
        self.decay_rate = float(decay_rate)
        self.decay_epochs = float(decay_epochs)

    def __call__(self, step):
        epoch = keras.ops.cast(step, "float32") / self.updates_per_epoch
        warm = keras.ops.minimum(1.0, (epoch + 1.0 / self.updates_per_epoch) / max(self.warmup_epochs, 1e-9)) \
            if self.warmup_epochs > 0 else 1.0
        decay = self.decay_rate ** keras.ops.floor(epoch / self.decay_epochs)
        return self.peak * warm * decay

    def get_config(self):
        return dict(peak=self.peak, updates_per_epoch=self.updates_per_epoch,
                    warmup_epochs=self.warmup_epochs, decay_rate=self.decay_rate,
                    decay_epochs=self.decay_epochs)


@keras.saving.register_keras_serializable(package="effnet_lib")
class Cosine(keras.optimizers.schedules.LearningRateSchedule):
    """From ``peak`` to 0 over ``total_updates`` along half a cosine (optional linear warm-up)."""

    def __init__(self, peak: float, total_updates: int, warmup_updates: int = 0):
        self.peak = float(peak)
        self.total_updates = max(int(total_updates), 1)
        self.warmup_updates = int(warmup_updates)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        progress = keras.ops.minimum(step / self.total_updates, 1.0)
        value = 0.5 * self.peak * (1.0 + keras.ops.cos(math.pi * progress))
        if self.warmup_updates:
            value = value * keras.ops.minimum(1.0, (step + 1.0) / self.warmup_updates)
        return value

    def get_config(self):
        return dict(peak=self.peak, total_updates=self.total_updates, warmup_updates=self.warmup_updates)


def schedule(kind: str, peak: float, updates_per_epoch: int, epochs: float, warmup_epochs: float = 0,
             decay_rate: float = 0.97, decay_epochs: float = 2.4):
    if kind == "exponential":
        return WarmupExponentialDecay(peak, updates_per_epoch, warmup_epochs, decay_rate, decay_epochs)
    if kind == "cosine":
        return Cosine(peak, int(round(updates_per_epoch * epochs)), int(round(updates_per_epoch * warmup_epochs)))
    if kind == "constant":
        return float(peak)
    raise ValueError(f"lr_schedule={kind!r}: accepted exponential, cosine, constant.")


@keras.saving.register_keras_serializable(package="effnet_lib")
class RMSpropOnesStart(keras.optimizers.RMSprop):
    """RMSprop whose mean-square slots start at 1, as TensorFlow 1's ``RMSPropOptimizer``
    (the reference's) did, rather than at 0 as Keras's do.

    With ``rho`` near 1 (0.998 at a batch of 32) a zero start leaves the mean square
    tiny for hundreds of steps, so the first updates are ``lr * g / sqrt(eps)``,
    about 30x the intended size, and small runs diverge before they learn.
    """

    def add_optimizer_variables(self, trainable_variables, name, initializer="zeros"):
        if name == "velocity":
            initializer = "ones"
        return super().add_optimizer_variables(trainable_variables, name, initializer=initializer)


def rmsprop(learning_rate, rho: float, epsilon: float = 1e-3, momentum: float = 0.9,
            weight_decay: float = 0.0, gradient_accumulation: int = 1) -> keras.optimizers.Optimizer:
    optimizer = RMSpropOnesStart(
        learning_rate=learning_rate, rho=rho, epsilon=epsilon, momentum=momentum,
        weight_decay=weight_decay or None,
        gradient_accumulation_steps=gradient_accumulation if gradient_accumulation > 1 else None)
    exclude_from_weight_decay(optimizer)
    return optimizer


def exclude_from_weight_decay(optimizer) -> None:
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY))


def decays(variable) -> bool:
    """Whether weight decay and L2 apply to a variable (not norm/Proxy Norm parameters)."""
    return not any(name in variable.path.split("/")[-1] for name in NO_DECAY)


def add_l2_regularization(model: keras.Model, l2: float) -> int:
    """Add ``l2/2 * ||w||^2`` of every decayed trainable weight to the model's losses.

    Returns how many variables got it. Works on every backend: Keras collects
    variable regularisers into ``model.losses`` inside the (stateless) step.
    """
    if not l2:
        return 0
    if l2 < 0:
        raise ValueError(f"l2_regularization={l2!r}: it must be >= 0.")
    count = 0
    for variable in model.trainable_weights:
        if decays(variable):
            variable.regularizer = keras.regularizers.L2(l2 / 2)
            count += 1
    return count
