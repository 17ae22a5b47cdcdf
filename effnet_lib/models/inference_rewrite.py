"""Inference rewrites: a trained model's outputs with less work per image.

:func:`for_inference` returns a copy of a model of this kit in which

* every BatchNormalization is folded into the convolution before it: the kernel is
  scaled per output channel by ``gamma / sqrt(var + eps)`` and the shift
  ``beta - mean * gamma / sqrt(var + eps)`` becomes the convolution's bias; the norm's
  layer stays as a :class:`PassThrough` (so the layer names and the graph keep their shape);
* every Proxy Norm keeps its affine and activation but its proxy moments, which depend
  on the weights only, are computed once and stored (:class:`FrozenProxyNormActivation`),
  instead of being recomputed from 200 proxy points per channel at every call;
* dropout and drop-connect are :class:`PassThrough` layers.

GroupNorm and LayerNorm normalise each image by its own statistics: nothing of them can be
computed ahead, so they stay. The rewritten model computes what the original computes in
inference mode (``training=False``); it is for inference only (its BatchNorm statistics
are baked in). Tested: logits equal within 1e-4 of their spread for BN, GN, LN_PN models,
depthwise and grouped (``tests/test_inference.py``).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from .proxy_norm import ProxyNormActivation

CONV_SUFFIXES = ("_conv", "_dwconv", "_gconv")  # the builder's names for a norm's conv


@keras.saving.register_keras_serializable(package="effnet_lib")
class PassThrough(keras.layers.Layer):
    """Returns its input; takes the ``training`` and ``mask`` arguments of the layer it
    replaces (``keras.layers.Identity`` refuses them)."""

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="effnet_lib")
class FrozenProxyNormActivation(keras.layers.Layer):
    """Proxy Norm at inference: ``(act(gamma * x + beta) - mean) * inv_std`` with the proxy
    moments (``mean``, ``inv_std``) stored, not recomputed (see :class:`ProxyNormActivation`)."""

    def __init__(self, activation: str = "swish", deferred_scale: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.activation = activation
        self.deferred_scale = bool(deferred_scale)
        self._act = keras.activations.get(activation)

    def build(self, input_shape):
        shape = (input_shape[-1],)
        for name, start in (("beta", "zeros"), ("gamma", "ones"), ("mean", "zeros"),
                            ("inv_std", "ones")):
            setattr(self, name, self.add_weight(name=name, shape=shape, initializer=start,
                                                trainable=False))

    def call(self, x):
        cast = lambda v: ops.cast(v, x.dtype)  # noqa: E731
        centred = self._act(cast(self.gamma) * x + cast(self.beta)) - cast(self.mean)
        if self.deferred_scale:
            return centred, ops.ones_like(centred[:, :1, :1, :]) * cast(self.inv_std)
        return centred * cast(self.inv_std)

    def compute_output_shape(self, input_shape):
        if self.deferred_scale:
            return input_shape, (input_shape[0], 1, 1, input_shape[-1])
        return input_shape

    def get_config(self):
        return {**super().get_config(), "activation": self.activation,
                "deferred_scale": self.deferred_scale}


def folded_pairs(model) -> dict[str, str]:
    """{convolution name: BatchNormalization name} for every BatchNorm of ``model``, from
    the builder's names (``{p}_bn`` follows ``{p}_conv``, ``{p}_dwconv`` or ``{p}_gconv``)."""
    names = {layer.name for layer in model.layers}
    pairs = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            prefix = layer.name.removesuffix("_bn")
            conv = next((prefix + s for s in CONV_SUFFIXES if prefix + s in names), None)
            if conv is None:
                raise ValueError(f"{layer.name}: no {' / '.join(prefix + s for s in CONV_SUFFIXES)} "
                                 f"before it; only models built by effnet_lib can be folded.")
            pairs[conv] = layer.name
    return pairs


def for_inference(model) -> keras.Model:
    """The rewritten copy of ``model`` (see the module doc); ``model`` is left as it is."""
    pairs = folded_pairs(model)
    folded_norms = set(pairs.values())

    def clone(layer):
        config = layer.get_config()
        if layer.name in folded_norms or isinstance(layer, keras.layers.Dropout):
            return PassThrough(name=layer.name, dtype=layer.dtype_policy.name)
        if isinstance(layer, ProxyNormActivation):
            return FrozenProxyNormActivation(layer.activation, layer.deferred_scale,
                                             name=layer.name, dtype=layer.dtype_policy.name)
        if layer.name in pairs:
            return layer.__class__.from_config(dict(config, use_bias=True))
        return layer.__class__.from_config(config)

    rewritten = keras.models.clone_model(model, clone_function=clone)
    originals = {layer.name: layer for layer in model.layers}
    for layer in rewritten.layers:
        original = originals[layer.name]
        if layer.name in pairs:
            _fold(layer, original, originals[pairs[layer.name]])
        elif isinstance(layer, FrozenProxyNormActivation):
            _freeze(layer, original)
        elif layer.weights:
            layer.set_weights(original.get_weights())
    if hasattr(model, "effnet_spec"):
        rewritten.effnet_spec = model.effnet_spec
    return rewritten


def _fold(conv, original_conv, norm) -> None:
    """Set ``conv`` (with a bias) to ``norm(original_conv(x))`` in inference mode."""
    f64 = lambda v: np.asarray(keras.ops.convert_to_numpy(v), dtype=np.float64)  # noqa: E731
    channels = f64(norm.moving_mean).shape[0]
    gamma = f64(norm.gamma) if norm.gamma is not None else np.ones(channels)
    beta = f64(norm.beta) if norm.beta is not None else np.zeros(channels)
    scale = gamma / np.sqrt(f64(norm.moving_variance) + norm.epsilon)
    weights = original_conv.get_weights()
    kernel = np.asarray(weights[0], dtype=np.float64)
    if isinstance(original_conv, keras.layers.DepthwiseConv2D):
        # [k, k, C, multiplier]: output channel c * multiplier + m
        kernel = kernel * scale.reshape(1, 1, kernel.shape[2], kernel.shape[3])
    else:
        kernel = kernel * scale  # [k, k, C_in / groups, C_out]
    bias = np.asarray(weights[1], np.float64) if len(weights) > 1 else np.zeros(channels)
    bias = (bias - f64(norm.moving_mean)) * scale + beta
    conv.set_weights([kernel.astype(weights[0].dtype), bias.astype(weights[0].dtype)])


def _freeze(layer: FrozenProxyNormActivation, original: ProxyNormActivation) -> None:
    mean, var = (np.asarray(keras.ops.convert_to_numpy(v), np.float64)
                 for v in original.proxy_moments())
    beta, gamma = (keras.ops.convert_to_numpy(v) for v in (original.beta, original.gamma))
    layer.set_weights([beta, gamma, mean.astype(beta.dtype),
                       (1.0 / np.sqrt(var + original.epsilon)).astype(beta.dtype)])
