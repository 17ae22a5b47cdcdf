"""Exact multiply-adds, parameters and activation memory, from the architecture spec.

Every count here is derived from :class:`EfficientNetSpec` (its decoded blocks), not
from a built model and not from constants; a test recounts the same quantities
from a built Keras model's real layer shapes.

Conventions (the paper's "FLOPs" are multiply-adds):

* ``macs``: multiply-adds of convolutions and dense layers, squeeze-excite ones
  included. A k x k conv with ``groups`` groups costs
  ``H_out * W_out * k * k * (C_in / groups) * C_out``.
* ``elementwise``: one per output element of norms, activations, Proxy Norm, the
  SE gate, residual adds and pooling, counted apart so that it can be seen but
  never mixed into ``macs``.
* ``params``: weights and biases of convs and dense layers; ``norm_params``: the
  trainable parameters of norms and Proxy Norm (BN's moving statistics are not
  trainable and are not counted).
* ``activation_bytes``: what the layer keeps for the backward pass, for ``batch_size``
  images at the precision's bytes per value: its output tensor, and for Proxy Norm also
  the two tensors inside it that its gradient needs (the affine output ``gamma x + beta``
  and the activation of it), three tensors of the output's size.

Case names are resolved by ``effnet_lib.profile`` (the package's API), which
takes them too; here a spec, a model name or a built model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..common.precision import precision as precision_entry
from ..models.norms import norm_kind
from ..models.spec import BlockConfig, EfficientNetSpec, as_spec

# Proxy Norm keeps its output, its affine output and the activation of it for the backward
# pass: three tensors where an activation layer keeps one.
PROXY_NORM_KEPT = 3
LAYER_COLUMNS = ["layer", "block", "stage", "kind", "kernel", "stride", "groups", "input_shape",
                 "output_shape", "macs", "params", "norm_params", "elementwise",
                 "activation_elements", "activation_bytes"]


@dataclass
class Profile:
    """Per-layer counts of one model at one resolution, with totals."""

    spec: EfficientNetSpec
    image_size: int
    batch_size: int
    precision: str  # bits per activation value, "16" or "32"
    layers: pd.DataFrame

    @property
    def macs(self) -> int:
        """Multiply-adds of one forward pass of the whole batch."""
        return int(self.layers["macs"].sum())

    @property
    def params(self) -> int:
        """Conv and dense weights and biases."""
        return int(self.layers["params"].sum())

    @property
    def norm_params(self) -> int:
        return int(self.layers["norm_params"].sum())

    @property
    def total_params(self) -> int:
        return self.params + self.norm_params

    @property
    def elementwise(self) -> int:
        return int(self.layers["elementwise"].sum())

    @property
    def activation_bytes(self) -> int:
        return int(self.layers["activation_bytes"].sum())

    def by(self, level: str = "block") -> pd.DataFrame:
        """Sums per ``"block"`` or ``"stage"`` (stem = stage 0, head = stage 8)."""
        if level not in ("block", "stage"):
            raise ValueError(f"level={level!r}: accepted 'block' or 'stage'.")
        columns = ["macs", "params", "norm_params", "elementwise", "activation_bytes"]
        return self.layers.groupby(level, sort=False)[columns].sum().reset_index()


def profile(spec_or_name_or_model, image_size: int | None = None, batch_size: int = 1,
            precision: str = "32") -> Profile:
    """Count multiply-adds, parameters and activation memory of a model.

    Args:
        spec_or_name_or_model: an :class:`EfficientNetSpec`, a model name, or a Keras
            model built by :func:`effnet_lib.build_model` (then its input size is used
            and counts come from its spec, recovered from its layers).
        image_size: input height and width (default: the spec's resolution).
        batch_size: images per forward pass; scales MACs and activation memory.
        precision: any name of :mod:`effnet_lib.common.precision` (``"16"``,
            ``"32"``, a case's ``"16.32"``): it sets the bits per activation value.
    """
    bits = precision_entry(precision).activation_bits
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"batch_size={batch_size!r}: it must be an integer >= 1.")
    spec, model_size = _spec_of(spec_or_name_or_model)
    size = image_size or model_size or spec.resolution
    if not (isinstance(size, int) and size >= 8):
        raise ValueError(f"image_size={size!r}: it must be an integer >= 8.")
    rows = _layer_rows(spec, size)
    table = pd.DataFrame(rows, columns=LAYER_COLUMNS[:-1])
    for column in ("macs", "elementwise", "activation_elements"):
        table[column] = table[column] * batch_size
    table["activation_bytes"] = table["activation_elements"] * (bits // 8)
    return Profile(spec, size, batch_size, str(bits), table)


def _spec_of(obj):
    if isinstance(obj, (EfficientNetSpec, str)):
        return as_spec(obj), None
    spec = getattr(obj, "effnet_spec", None)
    if spec is None:
        raise TypeError("profile() takes an EfficientNetSpec, a model or case name, or a model "
                        "built by effnet_lib.build_model.")
    return spec, obj.input_shape[1]


class _Counter:
    """Walks the network in order, tracking the current tensor shape."""

    def __init__(self, spec: EfficientNetSpec, size: int):
        self.spec = spec
        self.shape = (size, size, 3)
        self.rows = []
        self.block, self.stage = "stem", 0

    def _add(self, layer, kind, out_shape, macs=0, params=0, norm_params=0, elementwise=0,
             kernel=None, stride=None, groups=None, in_shape=None, kept=1):
        """``kept``: tensors of the output's size the layer holds for its backward pass."""
        in_shape = in_shape or self.shape
        self.rows.append([layer, self.block, self.stage, kind, kernel, stride, groups,
                          in_shape, out_shape, macs, params, norm_params, elementwise,
                          kept * math.prod(out_shape)])
        return out_shape

    def conv(self, layer, filters, kernel, stride=1, groups=1, bias=False, kind="conv",
             shape=None):
        h, w, c = shape or self.shape
        oh, ow = math.ceil(h / stride), math.ceil(w / stride)  # "same" padding
        weights = kernel * kernel * (c // groups) * filters
        out = (oh, ow, filters)
        self._add(layer, kind, out, macs=oh * ow * weights, params=weights + (filters if bias else 0),
                  kernel=kernel, stride=stride, groups=groups, in_shape=(h, w, c))
        return out

    def norm_act(self, prefix, project=False):
        spec, shape = self.spec, self.shape
        c = shape[-1]
        norm = norm_kind(spec.norm)
        if spec.uses_proxy_norm:
            affine = c if project else 0  # projection keeps gamma; PN carries the others
        else:
            affine = norm.affine_per_channel * c
        self._add(f"{prefix}_{norm.kind}", "norm", shape, norm_params=affine,
                  elementwise=math.prod(shape))
        if project:
            return
        if spec.uses_proxy_norm:
            self._add(f"{prefix}_proxy_norm", "proxy_norm", shape, norm_params=4 * c,
                      elementwise=math.prod(shape), kept=PROXY_NORM_KEPT)
        else:
            self._add(f"{prefix}_activation", "activation", shape, elementwise=math.prod(shape))


def _layer_rows(spec: EfficientNetSpec, size: int) -> list:
    count = _Counter(spec, size)
    count.shape = count.conv("stem_conv", spec.stem_filters, 3, stride=2)
    count.norm_act("stem")
    for block in spec.blocks():
        _block_rows(count, block)
    count.block, count.stage = "top", 8
    count.shape = count.conv("top_conv", spec.top_filters, 1)
    count.norm_act("top")
    c = count.shape[-1]
    count._add("avg_pool", "pool", (c,), elementwise=math.prod(count.shape))
    count._add("predictions", "dense", (spec.num_classes,), macs=c * spec.num_classes,
               params=c * spec.num_classes + spec.num_classes, in_shape=(c,))
    return count.rows


def _block_rows(count: _Counter, block: BlockConfig) -> None:
    count.block, count.stage = block.name, block.stage
    p = block.name
    block_input = count.shape
    if block.expand_ratio != 1:
        count.shape = count.conv(f"{p}_expand_conv", block.expanded_filters, 1)
        count.norm_act(f"{p}_expand")
    kind, name = ("dwconv", f"{p}_dwconv") if block.depthwise else ("gconv", f"{p}_gconv")
    count.shape = count.conv(name, block.expanded_filters, block.kernel_size, stride=block.stride,
                             groups=block.groups, kind=kind)
    count.norm_act(p)
    if block.se_filters:
        h, w, c = count.shape
        count._add(f"{p}_se_squeeze", "pool", (1, 1, c), elementwise=h * w * c)
        reduced = count.conv(f"{p}_se_reduce", block.se_filters, 1, bias=True, kind="se_conv",
                             shape=(1, 1, c))
        count._add(f"{p}_se_reduce_activation", "activation", reduced, elementwise=block.se_filters,
                   in_shape=reduced)
        expanded = count.conv(f"{p}_se_expand", c, 1, bias=True, kind="se_conv", shape=reduced)
        count._add(f"{p}_se_expand_activation", "activation", expanded, elementwise=c,
                   in_shape=expanded)
        count._add(f"{p}_se_excite", "se_gate", count.shape, elementwise=h * w * c)
    count.shape = count.conv(f"{p}_project_conv", block.filters_out, 1)
    count.norm_act(f"{p}_project", project=True)
    if block.has_skip:
        count._add(f"{p}_add", "add", count.shape, elementwise=math.prod(count.shape))
    assert not block.has_skip or count.shape == block_input

