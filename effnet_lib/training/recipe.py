"""The paper's optimisation recipe in Keras: RMSprop, learning-rate schedules, weight decay.

As the reference code ran it (``graphcore/examples``, ``applications/tensorflow/cnns/
training``, commit b30108f: ``train.py``, ``ipu_optimizer.py``, ``LR_Schedules/``):

* RMSprop with ``rho = 1 - global_batch * 2^-14``, ``epsilon = 1e-3`` inside the square
  root, momentum 0.9, mean squares starting at 1 (TensorFlow 1's RMSProp), and
  ``lr = 2^-14 * global_batch`` (``CaseConfig.learning_rate``, ``.rmsprop_rho``).
* Schedules, stepped by *weight updates*: a linear warm-up, then ``x0.97`` at every
  ``epochs / lr_drops`` epochs (146 drops over 350 epochs: every 2.397 epochs, and
  the same shape for a shortened run); or a cosine from the peak to 0 with its own
  linear warm-up (fine-tuning). Keras steps a schedule by *micro-steps* under
  gradient accumulation (``optimizer._iterations``), so the schedules here divide by
  ``steps_per_update``.
* Weight decay, three kinds (:data:`WEIGHT_DECAY_MODES`, and L2 apart):

  - ``coupled`` (the reference's, the default): ``g + wd * w`` is what RMSprop sees,
    added once per weight update to the mean gradient, after loss scaling is undone;
  - ``decoupled`` (Keras's ``weight_decay``): ``w -= lr * wd * w`` beside RMSprop's
    step, outside its normalisation;
  - ``--l2-regularization``: ``l2/2 * ||w||^2`` added to the loss. Its gradient is the
    coupled term, so the two update alike in float32; L2 also shows in the loss and
    passes through loss scaling and the compute precision.

  All three decay the variables the reference decays: every trainable weight but the
  norms' ``beta``/``gamma`` (Proxy Norm's affine ones included) and BN's moving
  statistics. Proxy Norm's ``proxy_beta``/``proxy_gamma`` (beta', gamma') *are* decayed,
  as the reference's ``Models/proxy_norm.py`` does, pulling the proxy towards N(0, 1).
* Loss scaling for float16 compute is static (the reference's 128): Keras's
  ``loss_scale_factor``, not its dynamic ``LossScaleOptimizer``.
"""

from __future__ import annotations

import math

import keras

from .cases import CaseConfig

NO_DECAY = ("beta", "gamma", "moving_mean", "moving_variance")  # variable names, exactly
WEIGHT_DECAY_MODES = ("coupled", "decoupled")


def decays(variable) -> bool:
    """Whether weight decay and L2 apply to a variable (not norm beta/gamma, not statistics)."""
    return variable.path.split("/")[-1] not in NO_DECAY


def _update_of(step, steps_per_update: int):
    return keras.ops.floor(keras.ops.cast(step, "float32") / steps_per_update)


@keras.saving.register_keras_serializable(package="effnet_lib")
class WarmupExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up over ``warmup_epochs``, then ``decay_rate`` every ``decay_epochs`` (staircase).

    ``step`` counts micro-steps; ``steps_per_update`` of them make one weight update.
    """

    def __init__(self, peak: float, updates_per_epoch: int, warmup_epochs: float = 5,
                 decay_rate: float = 0.97, decay_epochs: float = 2.4, steps_per_update: int = 1):
        self.peak = float(peak)
        self.updates_per_epoch = int(updates_per_epoch)
        self.warmup_epochs = float(warmup_epochs)
        self.decay_rate = float(decay_rate)
        self.decay_epochs = float(decay_epochs)
        self.steps_per_update = int(steps_per_update)

    def __call__(self, step):
        epoch = _update_of(step, self.steps_per_update) / self.updates_per_epoch
        warm = 1.0
        if self.warmup_epochs > 0:
            warm = keras.ops.minimum(1.0, (epoch + 1.0 / self.updates_per_epoch) / self.warmup_epochs)
        decay = self.decay_rate ** keras.ops.floor(epoch / self.decay_epochs)
        return self.peak * warm * decay

    def get_config(self):
        return dict(peak=self.peak, updates_per_epoch=self.updates_per_epoch,
                    warmup_epochs=self.warmup_epochs, decay_rate=self.decay_rate,
                    decay_epochs=self.decay_epochs, steps_per_update=self.steps_per_update)


@keras.saving.register_keras_serializable(package="effnet_lib")
class Cosine(keras.optimizers.schedules.LearningRateSchedule):
    """From ``peak`` to 0 over ``total_updates`` along half a cosine, times a linear warm-up
    over ``warmup_updates`` (which may outlast the run, as the reference's fine-tuning did)."""

    def __init__(self, peak: float, total_updates: int, warmup_updates: int = 0,
                 steps_per_update: int = 1):
        self.peak = float(peak)
        self.total_updates = max(int(total_updates), 1)
        self.warmup_updates = int(warmup_updates)
        self.steps_per_update = int(steps_per_update)

    def __call__(self, step):
        update = _update_of(step, self.steps_per_update)
        progress = keras.ops.minimum(update / self.total_updates, 1.0)
        value = 0.5 * self.peak * (1.0 + keras.ops.cos(math.pi * progress))
        if self.warmup_updates:
            value = value * keras.ops.minimum(1.0, (update + 1.0) / self.warmup_updates)
        return value

    def get_config(self):
        return dict(peak=self.peak, total_updates=self.total_updates,
                    warmup_updates=self.warmup_updates, steps_per_update=self.steps_per_update)


def schedule(kind: str, peak: float, updates_per_epoch: int, epochs: float, warmup_epochs: float = 0,
             decay_rate: float = 0.97, decay_epochs: float = 2.4, steps_per_update: int = 1):
    if kind == "exponential":
        return WarmupExponentialDecay(peak, updates_per_epoch, warmup_epochs, decay_rate,
                                      decay_epochs, steps_per_update)
    if kind == "cosine":
        return Cosine(peak, int(round(updates_per_epoch * epochs)),
                      int(round(updates_per_epoch * warmup_epochs)), steps_per_update)
    if kind == "constant":
        return float(peak)
    raise ValueError(f"lr_schedule={kind!r}: accepted exponential, cosine, constant.")


@keras.saving.register_keras_serializable(package="effnet_lib")
class RMSpropOnesStart(keras.optimizers.RMSprop):
    """RMSprop as TensorFlow 1's ``RMSPropOptimizer`` (the reference's) ran it.

    * Mean-square slots start at 1, not at 0 as Keras's do: with ``rho`` near 1 (0.998
      at a batch of 32) a zero start leaves the mean square tiny for hundreds of steps,
      so the first updates are ``lr * g / sqrt(eps)``, about 30x the intended size.
    * ``coupled_weight_decay``: ``wd * w`` is added to the (mean, unscaled) gradient of
      every variable :func:`decays` admits, before RMSprop normalises it.
    """

    def __init__(self, *args, coupled_weight_decay: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.coupled_weight_decay = float(coupled_weight_decay)
        self.decayed_indices = frozenset()

    def build(self, variables):
        super().build(variables)
        self.decayed_indices = frozenset(i for i, v in enumerate(variables) if decays(v))

    def add_optimizer_variables(self, trainable_variables, name, initializer="zeros"):
        if name == "velocity":
            initializer = "ones"
        return super().add_optimizer_variables(trainable_variables, name, initializer=initializer)

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        if self.coupled_weight_decay and index in self.decayed_indices:
            gradient = keras.ops.add(
                keras.ops.cast(gradient, variable.dtype),
                keras.ops.multiply(keras.ops.cast(self.coupled_weight_decay, variable.dtype),
                                   variable))
        if keras.backend.backend() == "tensorflow" and self.momentum > 0 and not self.centered:
            _apply_rmsprop_in_one_op(variable, self._velocities[index], self._momentums[index],
                                     gradient, learning_rate, self.rho, self.momentum,
                                     self.epsilon)
            return
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "coupled_weight_decay": self.coupled_weight_decay}


def _apply_rmsprop_in_one_op(variable, mean_square, momentum_slot, gradient, learning_rate, rho,
                             momentum, epsilon):
    """TensorFlow's fused RMSProp kernel (``ApplyRMSProp``, the op TensorFlow 1's
    ``RMSPropOptimizer`` ran): the same arithmetic as Keras's update (``ms = rho ms +
    (1 - rho) g^2; mom = momentum mom + lr g / sqrt(ms + eps); w -= mom``) in one op per
    variable where Keras's ops took 18. Measured on the tiny test model (96 variables): its
    training step's graph 4,561 ops instead of 6,193, its first step (tracing and graph
    optimisation) 6.2/5.2 s instead of 8.0/6.5 s in two runs each."""
    import tensorflow as tf

    def handle(v):  # a Keras variable, a tf.Variable or a replica's component of one
        return (v.value if isinstance(v, keras.Variable) else v).handle

    dtype = variable.dtype
    tf.raw_ops.ResourceApplyRMSProp(
        var=handle(variable), ms=handle(mean_square), mom=handle(momentum_slot),
        lr=tf.cast(learning_rate, dtype), rho=tf.cast(rho, dtype),
        momentum=tf.cast(momentum, dtype), epsilon=tf.cast(epsilon, dtype),
        grad=tf.cast(gradient, dtype))


def rmsprop(learning_rate, rho: float, epsilon: float = 1e-3, momentum: float = 0.9,
            weight_decay: float = 0.0, weight_decay_mode: str = "coupled",
            gradient_accumulation: int = 1, loss_scale: float | None = None) -> RMSpropOnesStart:
    """The recipe's optimiser; ``loss_scale`` multiplies the loss (static loss scaling)."""
    if weight_decay_mode not in WEIGHT_DECAY_MODES:
        raise ValueError(f"weight_decay_mode={weight_decay_mode!r}: accepted "
                         f"{', '.join(WEIGHT_DECAY_MODES)}.")
    coupled = weight_decay_mode == "coupled"
    optimizer = RMSpropOnesStart(
        learning_rate=learning_rate, rho=rho, epsilon=epsilon, momentum=momentum,
        weight_decay=None if coupled or not weight_decay else weight_decay,
        coupled_weight_decay=weight_decay if coupled else 0.0,
        gradient_accumulation_steps=gradient_accumulation if gradient_accumulation > 1 else None,
        loss_scale_factor=loss_scale)
    optimizer.exclude_from_weight_decay(var_names=[f"^{name}$" for name in NO_DECAY])
    return optimizer


def optimizer_for(case: CaseConfig, updates_per_epoch: int, epochs: int, accumulation: int,
                  loss_scaled: bool) -> RMSpropOnesStart:
    """RMSprop with the case's schedule, decay and loss scaling; ``accumulation`` micro-steps
    per weight update (1 when the training loop accumulates itself)."""
    lr = schedule(case.lr_schedule, case.learning_rate, updates_per_epoch, epochs,
                  case.warmup_epochs, case.lr_decay_rate, case.decay_interval(epochs),
                  steps_per_update=accumulation)
    return rmsprop(lr, case.rmsprop_rho, case.rmsprop_epsilon, case.momentum, case.weight_decay,
                   case.weight_decay_mode, accumulation,
                   loss_scale=case.loss_scaling if loss_scaled else None)


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
