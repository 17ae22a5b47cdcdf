"""The norm + activation factory: every norm the kit builds is one entry of :data:`NORM_TABLE`.

A spec's ``norm`` is a table key (``"bn"``, ``"gn"``, ``"ln"``), optionally with
``"_pn"`` for Proxy Norm after it (``"ln_pn"``) where the entry allows it. The
model builder, the lessons' small convnet and the profiler all go through
:func:`normalization` and :func:`norm_activation`, so they build the same layers.

To add a norm: write its layer builder and add one :class:`Norm` to the table;
spec validation, the builder, the profiler's counts and the model-name tests
follow from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .rounding import largest_divisor_at_most

PROXY_NORM_SUFFIX = "_pn"


@dataclass(frozen=True)
class Norm:
    kind: str                 # the spec's norm name and the layer-name suffix
    build: Callable           # (spec, prefix, channels, center, scale) -> a Keras layer
    batch_dependent: bool     # normalises over the batch (training differs from inference)
    takes_proxy_norm: bool    # "<kind>_pn" is a valid norm
    affine_per_channel: int = 2  # trainable parameters per channel with center and scale


def _batch_norm(spec, prefix, channels, center, scale):
    from .fused_batch_norm import FusedBatchNormalization

    # Keras's layer, run by TensorFlow's fused kernel where it applies (same weights).
    return FusedBatchNormalization(momentum=spec.bn_momentum, epsilon=spec.norm_epsilon,
                                   center=center, scale=scale, name=f"{prefix}_bn")


def _group_norm(spec, prefix, channels, center, scale):
    from keras import layers

    # The reference uses min(C, groups), which divides every channel count EfficientNet
    # produces (multiples of 8); the divisor also covers odd widths.
    groups = largest_divisor_at_most(channels, spec.gn_groups)
    return layers.GroupNormalization(groups=groups, epsilon=spec.norm_epsilon, center=center,
                                     scale=scale, name=f"{prefix}_gn")


def _layer_norm(spec, prefix, channels, center, scale):
    from keras import layers

    # The paper's LN: one group, statistics per sample over H, W and C.
    return layers.GroupNormalization(groups=1, epsilon=spec.norm_epsilon, center=center,
                                     scale=scale, name=f"{prefix}_ln")


NORM_TABLE = {norm.kind: norm for norm in (
    Norm("bn", _batch_norm, batch_dependent=True, takes_proxy_norm=False),
    Norm("gn", _group_norm, batch_dependent=False, takes_proxy_norm=True),
    Norm("ln", _layer_norm, batch_dependent=False, takes_proxy_norm=True),
)}
NORMS = tuple(NORM_TABLE) + tuple(kind + PROXY_NORM_SUFFIX for kind, norm in NORM_TABLE.items()
                                  if norm.takes_proxy_norm)


def norm_kind(norm: str) -> Norm:
    """The table entry of a spec's norm (``"gn_pn"`` -> the ``"gn"`` entry)."""
    return NORM_TABLE[norm.removesuffix(PROXY_NORM_SUFFIX)]


def uses_proxy_norm(norm: str) -> bool:
    return norm.endswith(PROXY_NORM_SUFFIX)


def normalization(spec, prefix: str, channels: int, center: bool = True, scale: bool = True):
    """The spec's norm layer for ``channels`` channels, named ``{prefix}_{kind}``."""
    return norm_kind(spec.norm).build(spec, prefix, channels, center, scale)


def norm_activation(x, spec, prefix: str, defer_scale: bool = False):
    """Norm then activation; with Proxy Norm, the norm has no affine and Proxy Norm carries it.

    ``defer_scale`` (Proxy Norm with ``spec.proxy_norm_scale == "deferred"`` only): return
    ``(unscaled activation, per-channel scale)`` for the caller to apply, as the reference
    does before squeeze-excite and (dropping the scale) at the head.
    """
    from keras import layers

    from .proxy_norm import ProxyNormActivation

    channels = x.shape[-1]
    if uses_proxy_norm(spec.norm):
        x = normalization(spec, prefix, channels, center=False, scale=False)(x)
        return ProxyNormActivation(spec.activation, epsilon=spec.proxy_epsilon,
                                   deferred_scale=defer_scale, name=f"{prefix}_proxy_norm")(x)
    x = normalization(spec, prefix, channels)(x)
    return layers.Activation(spec.activation, name=f"{prefix}_activation")(x)
