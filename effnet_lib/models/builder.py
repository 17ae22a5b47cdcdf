"""EfficientNet B0-B7 with the paper's three knobs: group size, norm, resolution.

The architecture comes from :class:`effnet_lib.models.spec.EfficientNetSpec`; this
file only turns its decoded blocks into Keras 3 layers. Model code uses Keras
layers and ``keras.ops`` only, so the same model runs on the TensorFlow, JAX and
PyTorch backends.

Layer names follow ``keras.applications``: ``stem_*``, ``block{stage}{letter}_*``,
``top_*``, ``predictions``. Names say what a layer is, so they change with the
variant: the spatial conv is ``_dwconv`` when depthwise and ``_gconv`` when
grouped; norms are ``_bn``, ``_gn`` or ``_ln``; Proxy Norm layers are
``_proxy_norm`` and replace the ``_activation`` layer.
"""

from __future__ import annotations

import keras
from keras import layers

from .conv_impl import grouped_conv_class
from .image_normalization import ImageNormalization
from .norms import norm_activation, normalization
from .spec import BlockConfig, EfficientNetSpec, as_spec

# He-style initialisation as in keras.applications and the reference: fan-out for
# dense convs, fan-in for the grouped conv (the reference's choice). The classifier
# starts Glorot-uniform as in the reference (keras.applications uses a smaller uniform).
CONV_INIT = {"class_name": "VarianceScaling",
             "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"}}
GROUP_CONV_INIT = {"class_name": "VarianceScaling",
                   "config": {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal"}}
DENSE_INIT = "glorot_uniform"


def build_model(spec_or_name, image_size: int | None = None, num_classes: int | None = None,
                classifier_activation: str | None = None, conv_impl: str = "auto",
                **overrides) -> keras.Model:
    """Build an EfficientNet.

    Args:
        spec_or_name: an :class:`EfficientNetSpec` or a model name such as
            ``"B0-G16-LN_PN"`` (``effnet_lib.build_model`` also takes the paper's
            case names, such as ``"B0-G16-LN_PN-Half_16IPU_2x8"``).
        image_size: input height and width; defaults to the spec's resolution.
        num_classes: size of the classifier; defaults to the spec's (1000).
        classifier_activation: ``None`` returns logits (what the losses want);
            ``"softmax"`` returns probabilities like ``keras.applications``.
        conv_impl: how grouped convolutions run: ``"native"`` (Keras's
            ``Conv2D(groups=...)``), ``"split"`` (one conv per group, much faster
            with TensorFlow on CPU) or ``"auto"``: the faster of the two as measured
            for this backend and device (:mod:`effnet_lib.models.conv_impl`). Weights
            and outputs are the same either way.
        **overrides: any :class:`EfficientNetSpec` field, e.g. ``width_coefficient=0.5``.

    The model takes images in [0, 255] (uint8 or float) and normalises them itself.
    Its logits are float32 under every dtype policy: the classifier computes in
    float32, as Keras's mixed-precision guide advises, so that losses and metrics
    (top-k among them) see float32 under ``mixed_float16`` and ``mixed_bfloat16``.
    """
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    spec = as_spec(spec_or_name, **overrides)
    grouped_conv = grouped_conv_class(conv_impl)
    size = spec.resolution if image_size is None else image_size
    if not (isinstance(size, int) and size >= 8):
        raise ValueError(f"image_size={image_size!r} is not valid: it must be an integer >= 8.")

    inputs = keras.Input(shape=(size, size, 3), name="image")
    x = ImageNormalization(name="normalization")(inputs)
    x = layers.Conv2D(spec.stem_filters, 3, strides=2, padding="same", use_bias=False,
                      kernel_initializer=CONV_INIT, name="stem_conv")(x)
    x = norm_activation(x, spec, "stem")
    for block in spec.blocks():
        x = mbconv_block(x, block, spec, grouped_conv)
    x = layers.Conv2D(spec.top_filters, 1, padding="same", use_bias=False,
                      kernel_initializer=CONV_INIT, name="top_conv")(x)
    x = norm_activation(x, spec, "top", defer_scale=_deferred(spec))
    if _deferred(spec):
        x = x[0]  # the reference drops Proxy Norm's 1/sigma at the head: the classifier absorbs it
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if spec.dropout_rate > 0:
        x = layers.Dropout(spec.dropout_rate, name="top_dropout")(x)
    outputs = layers.Dense(spec.num_classes, activation=classifier_activation,
                           kernel_initializer=DENSE_INIT, dtype="float32", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=model_name(spec))
    model.effnet_spec = spec  # lets the profiler and summaries read the architecture back
    return model


def mbconv_block(x, block: BlockConfig, spec: EfficientNetSpec, grouped_conv=layers.Conv2D):
    """Inverted residual block: expand (1x1), spatial (k x k, grouped), squeeze-excite, project (1x1)."""
    prefix = block.name
    inputs = x
    if block.expand_ratio != 1:
        x = layers.Conv2D(block.expanded_filters, 1, padding="same", use_bias=False,
                          kernel_initializer=CONV_INIT, name=f"{prefix}_expand_conv")(x)
        x = norm_activation(x, spec, f"{prefix}_expand")

    if block.depthwise:
        x = layers.DepthwiseConv2D(block.kernel_size, strides=block.stride, padding="same",
                                   use_bias=False, depthwise_initializer=CONV_INIT,
                                   name=f"{prefix}_dwconv")(x)
    else:
        x = grouped_conv(block.expanded_filters, block.kernel_size, strides=block.stride,
                         padding="same", groups=block.groups, use_bias=False,
                         kernel_initializer=GROUP_CONV_INIT, name=f"{prefix}_gconv")(x)
    x = norm_activation(x, spec, prefix, defer_scale=_deferred(spec))
    x, scale = x if _deferred(spec) else (x, None)

    if block.se_filters:
        # The SE branch is never normalised, and keeps the plain activation under Proxy Norm.
        se = layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}_se_squeeze")(x)
        se = layers.Conv2D(block.se_filters, 1, padding="same", activation=spec.activation,
                           kernel_initializer=CONV_INIT, name=f"{prefix}_se_reduce")(se)
        se = layers.Conv2D(block.expanded_filters, 1, padding="same", activation="sigmoid",
                           kernel_initializer=CONV_INIT, name=f"{prefix}_se_expand")(se)
        if scale is not None:  # the reference: SE sees the unscaled features, the gate carries 1/sigma
            se = layers.Multiply(name=f"{prefix}_se_proxy_scale")([se, scale])
        x = layers.Multiply(name=f"{prefix}_se_excite")([x, se])
    elif scale is not None:
        x = layers.Multiply(name=f"{prefix}_proxy_scale")([x, scale])

    x = layers.Conv2D(block.filters_out, 1, padding="same", use_bias=False,
                      kernel_initializer=CONV_INIT, name=f"{prefix}_project_conv")(x)
    # No activation follows the projection, so Proxy Norm cannot apply; the reference
    # keeps the norm's scale but drops its shift there.
    x = normalization(spec, f"{prefix}_project", block.filters_out,
                       center=not spec.uses_proxy_norm, scale=True)(x)
    if block.has_skip:
        if block.drop_rate > 0:
            # Drop-connect: drop the whole residual branch per sample.
            x = layers.Dropout(block.drop_rate, noise_shape=(None, 1, 1, 1),
                               name=f"{prefix}_drop")(x)
        x = layers.Add(name=f"{prefix}_add")([x, inputs])
    return x



def _deferred(spec: EfficientNetSpec) -> bool:
    return spec.uses_proxy_norm and spec.proxy_norm_scale == "deferred"


def model_name(spec: EfficientNetSpec) -> str:
    """The Keras model's name: ``efficientnet_b0_g16_ln_pn``."""
    return "efficientnet_" + "".join(c if c.isalnum() else "_" for c in spec.name.lower())
