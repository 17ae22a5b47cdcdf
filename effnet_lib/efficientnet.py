"""EfficientNet B0-B7 with the paper's three knobs: group size, norm, resolution.

The architecture comes from :class:`effnet_lib.spec.EfficientNetSpec`; this file
only turns its decoded blocks into Keras 3 layers. Model code uses Keras layers
and ``keras.ops`` only, so the same model runs on the TensorFlow, JAX and PyTorch
backends.

Layer names follow ``keras.applications``: ``stem_*``, ``block{stage}{letter}_*``,
``top_*``, ``predictions``. Names say what a layer is, so they change with the
variant: the spatial conv is ``_dwconv`` when depthwise and ``_gconv`` when
grouped; norms are ``_bn``, ``_gn`` or ``_ln``; Proxy Norm layers are
``_proxy_norm`` and replace the ``_activation`` layer.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from . import grouped_conv
from .conv_impl import resolve as resolve_conv_impl
from .proxy_norm import ProxyNormActivation
from .cases import resolve_spec
from .spec import BlockConfig, EfficientNetSpec

# He-style initialisation as in keras.applications and the reference: fan-out for
# dense convs, fan-in for the grouped conv (the reference's choice), and a small
# uniform init for the classifier.
CONV_INIT = {"class_name": "VarianceScaling",
             "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"}}
GROUP_CONV_INIT = {"class_name": "VarianceScaling",
                   "config": {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal"}}
DENSE_INIT = {"class_name": "VarianceScaling",
              "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"}}

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


def grouped_conv_class(conv_impl: str = "auto"):
    """The layer class for grouped convolutions (see :mod:`effnet_lib.conv_impl`)."""
    return grouped_conv.Conv2D if resolve_conv_impl(conv_impl) == "split" else layers.Conv2D


def build_model(spec_or_name, image_size: int | None = None, num_classes: int | None = None,
                classifier_activation: str | None = None, conv_impl: str = "auto",
                **overrides) -> keras.Model:
    """Build an EfficientNet.

    Args:
        spec_or_name: an :class:`EfficientNetSpec`, a model name such as
            ``"B0-G16-LN_PN"`` or a paper case name such as
            ``"B0-G16-LN_PN-Half_16IPU_2x8"``.
        image_size: input height and width; defaults to the spec's resolution.
        num_classes: size of the classifier; defaults to the spec's (1000).
        classifier_activation: ``None`` returns logits (what the losses want);
            ``"softmax"`` returns probabilities like ``keras.applications``.
        conv_impl: how grouped convolutions run: ``"native"`` (Keras's
            ``Conv2D(groups=...)``), ``"split"`` (one conv per group, much faster
            with TensorFlow on CPU) or ``"auto"``: the faster of the two as measured
            for this backend and device (:mod:`effnet_lib.conv_impl`). Weights and
            outputs are the same either way.
        **overrides: any :class:`EfficientNetSpec` field, e.g. ``width_coefficient=0.5``.

    The model takes images in [0, 255] (uint8 or float) and normalises them itself.
    """
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    spec = resolve_spec(spec_or_name, **overrides)
    grouped_conv = grouped_conv_class(conv_impl)
    size = spec.resolution if image_size is None else image_size
    if not (isinstance(size, int) and size >= 8):
        raise ValueError(f"image_size={image_size!r} is not valid: it must be an integer >= 8.")

    inputs = keras.Input(shape=(size, size, 3), name="image")
    x = ImageNormalization(name="normalization")(inputs)
    x = layers.Conv2D(spec.stem_filters, 3, strides=2, padding="same", use_bias=False,
                      kernel_initializer=CONV_INIT, name="stem_conv")(x)
    x = _norm_activation(x, spec, "stem")
    for block in spec.blocks():
        x = mbconv_block(x, block, spec, grouped_conv)
    x = layers.Conv2D(spec.top_filters, 1, padding="same", use_bias=False,
                      kernel_initializer=CONV_INIT, name="top_conv")(x)
    x = _norm_activation(x, spec, "top")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if spec.dropout_rate > 0:
        x = layers.Dropout(spec.dropout_rate, name="top_dropout")(x)
    outputs = layers.Dense(spec.num_classes, activation=classifier_activation,
                           kernel_initializer=DENSE_INIT, name="predictions")(x)
    model = keras.Model(inputs, outputs, name=_model_name(spec))
    model.effnet_spec = spec  # lets the profiler and summaries read the architecture back
    return model


def mbconv_block(x, block: BlockConfig, spec: EfficientNetSpec, grouped_conv=layers.Conv2D):
    """Inverted residual block: expand (1x1), spatial (k x k, grouped), squeeze-excite, project (1x1)."""
    prefix = block.name
    inputs = x
    if block.expand_ratio != 1:
        x = layers.Conv2D(block.expanded_filters, 1, padding="same", use_bias=False,
                          kernel_initializer=CONV_INIT, name=f"{prefix}_expand_conv")(x)
        x = _norm_activation(x, spec, f"{prefix}_expand")

    if block.depthwise:
        x = layers.DepthwiseConv2D(block.kernel_size, strides=block.stride, padding="same",
                                   use_bias=False, depthwise_initializer=CONV_INIT,
                                   name=f"{prefix}_dwconv")(x)
    else:
        x = grouped_conv(block.expanded_filters, block.kernel_size, strides=block.stride,
                         padding="same", groups=block.groups, use_bias=False,
                         kernel_initializer=GROUP_CONV_INIT, name=f"{prefix}_gconv")(x)
    x = _norm_activation(x, spec, prefix)

    if block.se_filters:
        # The SE branch is never normalised, and keeps the plain activation under Proxy Norm.
        se = layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}_se_squeeze")(x)
        se = layers.Conv2D(block.se_filters, 1, padding="same", activation=spec.activation,
                           kernel_initializer=CONV_INIT, name=f"{prefix}_se_reduce")(se)
        se = layers.Conv2D(block.expanded_filters, 1, padding="same", activation="sigmoid",
                           kernel_initializer=CONV_INIT, name=f"{prefix}_se_expand")(se)
        x = layers.Multiply(name=f"{prefix}_se_excite")([x, se])

    x = layers.Conv2D(block.filters_out, 1, padding="same", use_bias=False,
                      kernel_initializer=CONV_INIT, name=f"{prefix}_project_conv")(x)
    # No activation follows the projection, so Proxy Norm cannot apply; the reference
    # keeps the norm's scale but drops its shift there.
    x = _normalization(spec, f"{prefix}_project", block.filters_out,
                       center=not spec.uses_proxy_norm, scale=True)(x)
    if block.has_skip:
        if block.drop_rate > 0:
            # Drop-connect: drop the whole residual branch per sample.
            x = layers.Dropout(block.drop_rate, noise_shape=(None, 1, 1, 1),
                               name=f"{prefix}_drop")(x)
        x = layers.Add(name=f"{prefix}_add")([x, inputs])
    return x


def _norm_activation(x, spec: EfficientNetSpec, prefix: str):
    channels = x.shape[-1]
    if spec.uses_proxy_norm:
        # Proxy Norm carries the affine transform, so the norm itself has none.
        x = _normalization(spec, prefix, channels, center=False, scale=False)(x)
        return ProxyNormActivation(spec.activation, epsilon=spec.proxy_epsilon,
                                   name=f"{prefix}_proxy_norm")(x)
    x = _normalization(spec, prefix, channels)(x)
    return layers.Activation(spec.activation, name=f"{prefix}_activation")(x)


def _normalization(spec: EfficientNetSpec, prefix: str, channels: int, center=True, scale=True):
    kind = spec.norm.split("_")[0]  # "gn_pn" -> "gn"
    if kind == "bn":
        return layers.BatchNormalization(momentum=spec.bn_momentum, epsilon=spec.norm_epsilon,
                                         center=center, scale=scale, name=f"{prefix}_bn")
    groups = 1 if kind == "ln" else _largest_divisor_at_most(channels, spec.gn_groups)
    return layers.GroupNormalization(groups=groups, epsilon=spec.norm_epsilon, center=center,
                                     scale=scale, name=f"{prefix}_{kind}")


def _largest_divisor_at_most(channels: int, groups: int) -> int:
    # GroupNorm needs equal groups; the reference uses min(C, groups), which divides
    # every channel count EfficientNet produces (multiples of 8), this also covers odd widths.
    groups = min(channels, groups)
    while channels % groups:
        groups -= 1
    return groups


def _model_name(spec: EfficientNetSpec) -> str:
    return "efficientnet_" + "".join(c if c.isalnum() else "_" for c in spec.name.lower())
