r"""Proxy Normalization (Labatie et al., NeurIPS 2021), as used by the paper.

Batch-independent norms (GroupNorm, LayerNorm) normalise each sample, but after
the affine transform and the activation the channels are no longer centred and
scaled the way BatchNorm would leave them. Proxy Norm fixes that *without*
looking at the batch: it pushes a fixed Gaussian "proxy" sample through the same
affine + activation and uses the proxy's statistics to normalise.

Formula, per channel ``c`` (``x_hat`` is the output of the preceding GN/LN,
which has no affine transform of its own)::

    q_i      = Phi^-1((i + 0.5) / 200),  i = 0..199       (Gaussian quantiles)
    z_i      = (1 + gamma'_c) * q_i + beta'_c             (proxy pre-activations)
    p_i      = act(gamma_c * z_i + beta_c)
    mu_c     = mean_i p_i,   var_c = mean_i (p_i - mu_c)^2   (biased)
    y        = (act(gamma_c * x_hat + beta_c) - mu_c) / sqrt(var_c + eps)

Learnable per channel: ``beta, gamma, beta', gamma'`` (initialised 0, 1, 0, 0);
``eps`` is 0.03. Weight decay applies to ``beta'``/``gamma'`` only (the training
engine excludes variables named ``beta``/``gamma``).

Where this differs from the reference (``graphcore/examples``, ``Models/proxy_norm.py``
and ``Models/efficientnet.py``), deliberately:

* The reference recomputes the proxy statistics inside a wrapped optimiser after
  each update and stores them in extra variables. Here they are computed in the
  forward pass and autodiff carries their gradient: the same function and the same
  gradients, with no optimiser coupling (so any Keras optimiser works).
* The reference "delays" the ``1/sqrt(var + eps)`` scale after the spatial conv of a
  block and folds it into the squeeze-excite gate, so the SE branch sees unscaled
  features (``(act - mu) * s * sigmoid(SE(pool(act - mu)))``); at the head it drops
  the scale (the classifier absorbs it). By default every Proxy Norm here applies
  the full formula above, as the paper writes it; ``EfficientNetSpec(proxy_norm_scale=
  "deferred")`` builds the reference's variant, for which this layer returns the
  unscaled activation and the per-channel scale (``deferred_scale=True``). The two
  differ by a per-channel positive rescaling that later weights can absorb, but they
  are not the same function, and not the same to train.
* Statistics are computed in float32 whatever the compute dtype, then cast.
"""

from __future__ import annotations

from statistics import NormalDist

import keras
import numpy as np
from keras import ops

_ACTIVATIONS = {"swish": ops.silu, "relu": ops.relu}


def gaussian_quantiles(num_points: int = 200) -> np.ndarray:
    """The proxy sample: ``Phi^-1((i + 0.5) / n)`` for i = 0..n-1."""
    normal = NormalDist()
    return np.array([normal.inv_cdf((i + 0.5) / num_points) for i in range(num_points)],
                    dtype=np.float32)


@keras.saving.register_keras_serializable(package="effnet_lib")
class ProxyNormActivation(keras.layers.Layer):
    """Affine + activation + proxy normalisation (replaces a norm's affine and the activation)."""

    def __init__(self, activation: str = "swish", epsilon: float = 0.03, num_points: int = 200,
                 deferred_scale: bool = False, **kwargs):
        super().__init__(**kwargs)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is not supported by Proxy Norm; "
                             f"accepted: {', '.join(_ACTIVATIONS)}.")
        if not epsilon > 0:
            raise ValueError(f"epsilon={epsilon!r} must be > 0.")
        if not num_points >= 2:
            raise ValueError(f"num_points={num_points!r} must be >= 2.")
        self.activation = activation
        self.epsilon = float(epsilon)
        self.num_points = int(num_points)
        self.deferred_scale = bool(deferred_scale)
        self._act = _ACTIVATIONS[activation]
        self._quantiles = gaussian_quantiles(self.num_points)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("ProxyNormActivation needs a known channel dimension.")
        if self.deferred_scale and len(input_shape) != 4:
            raise ValueError("deferred_scale needs image features [B, H, W, C].")
        shape = (channels,)
        self.beta = self.add_weight(name="beta", shape=shape, initializer="zeros")
        self.gamma = self.add_weight(name="gamma", shape=shape, initializer="ones")
        self.proxy_beta = self.add_weight(name="proxy_beta", shape=shape, initializer="zeros")
        self.proxy_gamma = self.add_weight(name="proxy_gamma", shape=shape, initializer="zeros")

    def proxy_moments(self):
        """Per-channel mean and variance of the activated proxy sample (float32)."""
        f32 = lambda v: ops.cast(v, "float32")  # noqa: E731
        beta, gamma = f32(self.beta), f32(self.gamma)
        q = ops.convert_to_tensor(self._quantiles[:, None])  # (points, 1)
        z = (1.0 + f32(self.proxy_gamma)) * q + f32(self.proxy_beta)  # (points, C)
        proxy = self._act(gamma * z + beta)
        mean = ops.mean(proxy, axis=0)
        var = ops.mean(ops.square(proxy - mean), axis=0)
        return mean, var

    def call(self, x):
        mean, var = self.proxy_moments()
        inv_std = ops.cast(ops.rsqrt(var + self.epsilon), x.dtype)
        y = self._act(ops.cast(self.gamma, x.dtype) * x + ops.cast(self.beta, x.dtype))
        centred = y - ops.cast(mean, x.dtype)
        if self.deferred_scale:
            # The scale per image and channel, [B, 1, 1, C], for the caller to apply later.
            return centred, ops.ones_like(centred[:, :1, :1, :]) * inv_std
        return centred * inv_std

    def compute_output_shape(self, input_shape):
        if self.deferred_scale:
            return input_shape, (input_shape[0], 1, 1, input_shape[-1])
        return input_shape

    def get_config(self):
        return {**super().get_config(), "activation": self.activation, "epsilon": self.epsilon,
                "num_points": self.num_points, "deferred_scale": self.deferred_scale}
