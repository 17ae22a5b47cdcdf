"""timm's EfficientNet built to match one of this kit's specs, and what still differs.

The standard networks (``B0``-``B7``, depthwise, BatchNorm) are timm's registered
``efficientnet_b0`` ... ``efficientnet_b7``. For the paper's variants timm has the pieces
but no registered model with the same expansion (its ``efficientnet_b0_g16_evos`` keeps
an expansion of 6 and uses EvoNorm), so :func:`timm_network` builds timm's
``EfficientNet`` class from this kit's decoded stages (kernel, repeats, stride, expansion,
channels, group size) with timm's GroupNorm for GN and LN. :func:`differences` lists the
fields that still differ; a test checks that the parameter counts agree.
"""

from __future__ import annotations

from functools import partial

from ..models.spec import B0_STAGES, PRESETS, STEM_FILTERS, TOP_FILTERS, EfficientNetSpec

# timm's BatchNorm2d default; this kit (and Keras, and the paper) use 1e-3.
TIMM_NORM_EPSILON = 1e-5


def is_standard(spec: EfficientNetSpec) -> bool:
    """Whether timm registers this network as it is (a B0-B7, depthwise, BatchNorm)."""
    size = spec.size_name
    width, depth = PRESETS.get(size, (None, None))[:2]
    return (spec.group_size == 1 and spec.norm == "bn" and spec.expand_ratio == 6
            and (spec.width_coefficient, spec.depth_coefficient) == (width, depth))


def timm_name(spec: EfficientNetSpec) -> str:
    """How a benchmark table names the timm network matched to ``spec``."""
    size = spec.size_name.lower()
    if is_standard(spec):
        return f"timm efficientnet_{size}"
    return f"timm EfficientNet matched to {spec.name}"


def arch_def(spec: EfficientNetSpec) -> list[list[str]]:
    """timm's block strings for the unscaled stages of ``spec`` (timm scales the depth and
    rounds the channels itself, with the same rules as this kit)."""
    strings = []
    for stage in B0_STAGES:
        kind, expand = ("ir", spec.expand_ratio) if stage.expands else ("ds", 1)
        se = f"_se{spec.se_ratio:g}" if spec.se_ratio > 0 else ""
        strings.append([f"{kind}_r{stage.repeats}_k{stage.kernel_size}_s{stage.stride}_e{expand}"
                        f"_c{stage.filters_out}{se}"])
    return strings


def timm_network(spec: EfficientNetSpec, num_classes: int):
    """The timm model matched to ``spec`` (torch must be installed)."""
    import timm

    if is_standard(spec):
        return timm.create_model(f"efficientnet_{spec.size_name.lower()}",
                                 pretrained=False, num_classes=num_classes)
    from timm.layers import GroupNormAct, get_act_layer
    from timm.models import efficientnet as timm_efficientnet

    if spec.norm.startswith("bn"):
        norm_layer = None  # timm's BatchNorm2d
    else:
        groups = 1 if spec.norm.startswith("ln") else spec.gn_groups
        norm_layer = partial(GroupNormAct, num_groups=groups, eps=spec.norm_epsilon)
    blocks = timm_efficientnet.decode_arch_def(
        arch_def(spec), spec.depth_coefficient,
        group_size=spec.group_size if spec.group_size > 1 else None)
    round_channels = partial(timm_efficientnet.round_channels,
                             multiplier=spec.width_coefficient, divisor=spec.depth_divisor)
    extra = {"norm_layer": norm_layer} if norm_layer else {}
    return timm_efficientnet.EfficientNet(
        block_args=blocks, num_classes=num_classes, num_features=round_channels(TOP_FILTERS),
        stem_size=STEM_FILTERS, round_chs_fn=round_channels, act_layer=get_act_layer("swish"),
        **extra)


def parameter_counts(request: dict) -> dict:
    """A fresh-process job (:mod:`effnet_lib.common.fresh_process`): the trainable parameters
    of the timm models matched to ``request["specs"]`` (spec dicts), each with
    ``request["num_classes"]`` classes. In a process of its own because PyTorch must load
    before TensorFlow: torchvision's import (torch._dynamo) crashes a process that loaded
    TensorFlow first (seen with torch 2.14, TF 2.21)."""
    counts = []
    for fields in request["specs"]:
        net = timm_network(EfficientNetSpec.from_dict(fields), request["num_classes"])
        counts.append(int(sum(p.numel() for p in net.parameters() if p.requires_grad)))
    return dict(counts=counts)


def differences(spec: EfficientNetSpec) -> list[str]:
    """What differs between this kit's ``spec`` and :func:`timm_network`'s model, besides
    the framework."""
    found = []
    if spec.norm.startswith("bn"):
        found.append(f"BatchNorm epsilon {TIMM_NORM_EPSILON:g} in timm, {spec.norm_epsilon:g} here")
    if "pn" in spec.norm:
        found.append("no Proxy Norm in timm: its GroupNorm/LayerNorm runs without the proxy "
                     "(this kit's model does more work per block)")
    if not is_standard(spec):
        found.append("built from timm's EfficientNet class and block strings (timm registers "
                     "no model with this expansion, group size and norm)")
    return found
