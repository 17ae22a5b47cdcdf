"""EfficientNet architecture as data.

Everything that describes *which* network to build lives here; the layers that
build it live in ``builder.py``. The profiler, the model summary and the
builder all read the same decoded block list (:meth:`EfficientNetSpec.blocks`),
so they cannot disagree about the architecture.

Sources: the B0 stage table and the compound-scaling coefficients are those of
Tan & Le (2019) as used by ``keras.applications`` and by Graphcore's reference
implementation (``graphcore/examples``, ``Models/efficientnet.py``); the native
and half resolutions are from the paper's ``configs.yml`` (graphcore/graphcore-research,
``Making_EfficientNet_More_Efficient``).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import warnings
from dataclasses import dataclass
from typing import Iterable

from .norms import NORMS, uses_proxy_norm
from .rounding import conv_groups, round_filters, round_repeats

ACTIVATIONS = ("swish", "relu")
PROXY_NORM_SCALES = ("formula", "deferred")


@dataclass(frozen=True)
class StageArgs:
    """One stage of the unscaled (B0) network."""

    kernel_size: int
    repeats: int
    filters_in: int
    filters_out: int
    expands: bool  # stage 1 never expands; the others use the spec's expand_ratio
    stride: int


# (kernel, repeats, in, out, expands, stride) of EfficientNet-B0.
B0_STAGES = (
    StageArgs(3, 1, 32, 16, False, 1),
    StageArgs(3, 2, 16, 24, True, 2),
    StageArgs(5, 2, 24, 40, True, 2),
    StageArgs(3, 3, 40, 80, True, 2),
    StageArgs(5, 3, 80, 112, True, 1),
    StageArgs(5, 4, 112, 192, True, 2),
    StageArgs(3, 1, 192, 320, True, 1),
)
STEM_FILTERS = 32
TOP_FILTERS = 1280

# name: (width coefficient, depth coefficient, native resolution, dropout)
PRESETS = {
    "B0": (1.0, 1.0, 224, 0.2),
    "B1": (1.0, 1.1, 240, 0.2),
    "B2": (1.1, 1.2, 260, 0.3),
    "B3": (1.2, 1.4, 300, 0.3),
    "B4": (1.4, 1.8, 380, 0.4),
    "B5": (1.6, 2.2, 456, 0.4),
    "B6": (1.8, 2.6, 528, 0.5),
    "B7": (2.0, 3.1, 600, 0.5),
}
# "Half" = about half the pixels of the native size; the paper trains B0-B5 only.
HALF_RESOLUTION = {"B0": 160, "B1": 176, "B2": 196, "B3": 204, "B4": 252, "B5": 328}

# Expansion ratio implied by the group size when a name does not say otherwise:
# G16 reduces 6 to 4 so that parameters stay about equal to the depthwise model.
DEPTHWISE_EXPAND_RATIO = 6
GROUPED_EXPAND_RATIO = 4

_NAME_RE = re.compile(r"^B(?P<size>\d)(?:-G(?P<group>\d+))?(?:-(?P<norm>[A-Z_]+))?$", re.IGNORECASE)


def closest(name: str, valid: Iterable[str], n: int = 3) -> list[str]:
    """The valid names nearest to ``name`` (for error messages)."""
    valid = list(valid)
    by_upper = {v.upper(): v for v in valid}
    hits = difflib.get_close_matches(name.upper(), list(by_upper), n=n, cutoff=0.4)
    return [by_upper[h] for h in hits]


@dataclass(frozen=True)
class BlockConfig:
    """One MBConv block, fully resolved (channels rounded, groups chosen)."""

    name: str  # block{stage}{letter}, e.g. "block2b"
    stage: int  # 1..7
    index: int  # 0-based position among all blocks
    kernel_size: int
    stride: int
    filters_in: int
    filters_out: int
    expand_ratio: int
    expanded_filters: int
    groups: int  # of the spatial conv; == expanded_filters means depthwise
    se_filters: int  # 0 when squeeze-excite is off
    has_skip: bool
    drop_rate: float  # drop-connect probability of the residual branch

    @property
    def depthwise(self) -> bool:
        return self.groups == self.expanded_filters


@dataclass(frozen=True)
class EfficientNetSpec:
    """Everything that defines an EfficientNet variant. Validated on creation."""

    name: str = "custom"
    width_coefficient: float = 1.0
    depth_coefficient: float = 1.0
    resolution: int = 224
    dropout_rate: float = 0.2
    group_size: int = 1
    expand_ratio: int = DEPTHWISE_EXPAND_RATIO
    norm: str = "bn"
    gn_groups: int = 4
    norm_epsilon: float = 1e-3
    bn_momentum: float = 0.97
    proxy_epsilon: float = 0.03
    proxy_norm_scale: str = "formula"  # "deferred": the reference code's placement of 1/sigma
    activation: str = "swish"
    se_ratio: float = 0.25
    drop_connect_rate: float = 0.2
    num_classes: int = 1000
    depth_divisor: int = 8

    def __post_init__(self):
        def need(ok: bool, field: str, accepted: str):
            if not ok:
                raise ValueError(f"{field}={getattr(self, field)!r} is not valid: {accepted}.")

        need(self.width_coefficient > 0, "width_coefficient", "it must be > 0 (B0 uses 1.0)")
        need(self.depth_coefficient > 0, "depth_coefficient", "it must be > 0 (B0 uses 1.0)")
        need(_is_int(self.resolution) and self.resolution >= 8, "resolution",
             "it must be an integer number of pixels >= 8")
        need(0 <= self.dropout_rate < 1, "dropout_rate", "it must be in [0, 1)")
        need(_is_int(self.group_size) and self.group_size >= 1, "group_size",
             "it must be an integer >= 1 (1 = depthwise, 16 = the paper's G16)")
        need(_is_int(self.expand_ratio) and self.expand_ratio >= 1, "expand_ratio",
             "it must be an integer >= 1 (6 for G1, 4 for G16)")
        need(self.norm in NORMS, "norm", f"accepted: {', '.join(NORMS)}")
        need(_is_int(self.gn_groups) and self.gn_groups >= 1, "gn_groups", "it must be an integer >= 1")
        need(self.norm_epsilon > 0, "norm_epsilon", "it must be > 0")
        need(0 <= self.bn_momentum < 1, "bn_momentum", "it must be in [0, 1)")
        need(self.proxy_epsilon > 0, "proxy_epsilon", "it must be > 0 (the paper uses 0.03)")
        need(self.proxy_norm_scale in PROXY_NORM_SCALES, "proxy_norm_scale",
             "accepted: formula (Proxy Norm's 1/sigma everywhere, as the paper writes it) or "
             "deferred (into the squeeze-excite gate, dropped at the head, as the reference code)")
        need(self.activation in ACTIVATIONS, "activation", f"accepted: {', '.join(ACTIVATIONS)}")
        need(0 <= self.se_ratio <= 1, "se_ratio", "it must be in [0, 1] (0 disables squeeze-excite)")
        need(0 <= self.drop_connect_rate < 1, "drop_connect_rate", "it must be in [0, 1)")
        need(_is_int(self.num_classes) and self.num_classes >= 1, "num_classes", "it must be an integer >= 1")
        need(_is_int(self.depth_divisor) and self.depth_divisor >= 1, "depth_divisor",
             "it must be an integer >= 1")

    # -- construction ---------------------------------------------------------
    @classmethod
    def preset(cls, size: str, **overrides) -> "EfficientNetSpec":
        """The standard network of a size ``B0``..``B7`` (G1, BatchNorm) plus overrides."""
        key = str(size).upper()
        if key not in PRESETS:
            raise ValueError(f"Unknown model size {size!r}: accepted {', '.join(PRESETS)}.")
        width, depth, resolution, dropout = PRESETS[key]
        fields = dict(name=key, width_coefficient=width, depth_coefficient=depth,
                      resolution=resolution, dropout_rate=dropout)
        fields.update(renamed_fields(overrides))
        return cls(**fields)

    @classmethod
    def from_name(cls, name: str, **overrides) -> "EfficientNetSpec":
        """Parse the paper's naming ``B{0-7}[-G{n}][-{BN|GN|LN|GN_PN|LN_PN}]``.

        Missing parts default to the standard EfficientNet (G1, BN). G1 implies
        expansion ratio 6 and any larger group size 4, unless ``expand_ratio`` is
        given. The spec's ``name`` is the canonical full name, e.g. ``B0-G16-LN_PN``.
        """
        match = _NAME_RE.match(str(name).strip())
        size = match and f"B{match['size']}"
        norm = match and (match["norm"] or "BN").lower()
        if not match or size not in PRESETS or norm not in NORMS:
            hint = closest(str(name), valid_model_names())
            raise ValueError(
                f"Unknown model name {name!r}. Names look like B0-G16-LN_PN: sizes B0-B7, "
                f"group sizes G1 (depthwise) or G16 etc., norms {', '.join(n.upper() for n in NORMS)}."
                + (f" Did you mean {', '.join(hint)}?" if hint else ""))
        group_size = int(match["group"] or 1)
        if group_size < 1:
            raise ValueError(f"Group size G{group_size} in {name!r} is not valid: it must be >= 1.")
        fields = dict(group_size=group_size, norm=norm,
                      expand_ratio=DEPTHWISE_EXPAND_RATIO if group_size == 1 else GROUPED_EXPAND_RATIO)
        fields.update(renamed_fields(overrides))
        spec = cls.preset(size, **fields)
        return spec.replace(name=f"{size}-G{spec.group_size}-{spec.norm.upper()}")

    @classmethod
    def from_dict(cls, fields: dict) -> "EfficientNetSpec":
        """A spec from :func:`dataclasses.asdict` output (a checkpoint's ``meta.json``)."""
        return cls(**renamed_fields({k: tuple(v) if isinstance(v, list) else v
                                     for k, v in fields.items()}))

    def replace(self, **overrides) -> "EfficientNetSpec":
        overrides = renamed_fields(overrides)
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"Unknown EfficientNetSpec field(s) {unknown}; fields are "
                            f"{[f.name for f in dataclasses.fields(self)]}.")
        return dataclasses.replace(self, **overrides)

    # -- derived architecture -------------------------------------------------
    @property
    def size(self) -> str | None:
        """``B0``..``B7`` when the coefficients are a preset's, else None."""
        for key, (width, depth, _, _) in PRESETS.items():
            if (width, depth) == (self.width_coefficient, self.depth_coefficient):
                return key
        return None

    @property
    def uses_proxy_norm(self) -> bool:
        return uses_proxy_norm(self.norm)

    @property
    def stem_filters(self) -> int:
        return round_filters(STEM_FILTERS, self.width_coefficient, self.depth_divisor)

    @property
    def top_filters(self) -> int:
        return round_filters(TOP_FILTERS, self.width_coefficient, self.depth_divisor)

    def blocks(self) -> list[BlockConfig]:
        """The decoded MBConv blocks, in order."""
        stages = [(s, round_repeats(s.repeats, self.depth_coefficient)) for s in B0_STAGES]
        total = sum(repeats for _, repeats in stages)
        blocks, index = [], 0
        for stage_number, (stage, repeats) in enumerate(stages, start=1):
            filters_in = round_filters(stage.filters_in, self.width_coefficient, self.depth_divisor)
            filters_out = round_filters(stage.filters_out, self.width_coefficient, self.depth_divisor)
            expand = self.expand_ratio if stage.expands else 1
            for repeat in range(repeats):
                stride = stage.stride if repeat == 0 else 1
                expanded = filters_in * expand
                blocks.append(BlockConfig(
                    name=f"block{stage_number}{_letter(repeat)}",
                    stage=stage_number,
                    index=index,
                    kernel_size=stage.kernel_size,
                    stride=stride,
                    filters_in=filters_in,
                    filters_out=filters_out,
                    expand_ratio=expand,
                    expanded_filters=expanded,
                    groups=conv_groups(expanded, self.group_size),
                    se_filters=max(1, int(filters_in * self.se_ratio)) if self.se_ratio > 0 else 0,
                    has_skip=stride == 1 and filters_in == filters_out,
                    drop_rate=self.drop_connect_rate * index / total,
                ))
                filters_in = filters_out
                index += 1
        return blocks

    @property
    def size_name(self) -> str:
        """The standard network a name starts with (``"B0"`` for ``B0-G16-LN_PN``), as
        keras.applications and timm name theirs; a custom spec's name as it is."""
        return self.name.split("-")[0]

    def block_names(self) -> list[str]:
        return [b.name for b in self.blocks()]


def as_spec(spec_or_name, **overrides) -> EfficientNetSpec:
    """An :class:`EfficientNetSpec` from a spec or a model name (``B0-G16-LN_PN``), with overrides.

    Case names (``B0-G16-LN_PN-Half_16IPU_2x8``) are training configurations:
    ``effnet_lib.build_model`` and :func:`effnet_lib.training.cases.resolve_spec` take them.
    """
    if isinstance(spec_or_name, EfficientNetSpec):
        return spec_or_name.replace(**overrides) if overrides else spec_or_name
    if not isinstance(spec_or_name, str):
        raise TypeError(f"Expected an EfficientNetSpec or a model name, got "
                        f"{type(spec_or_name).__name__}.")
    if _NAME_RE.match(spec_or_name.strip()) is None and any(
            word in spec_or_name.lower() for word in ("native", "half", "ipu")):
        raise ValueError(f"{spec_or_name!r} looks like one of the paper's training cases: "
                         f"effnet_lib.build_model and effnet_lib.load_case(name).model_spec() "
                         f"take case names.")
    return EfficientNetSpec.from_name(spec_or_name, **overrides)


def validate_splits(spec: EfficientNetSpec, splits) -> None:
    """Pipeline splits must be block names of ``spec``, in increasing order."""
    names = spec.block_names()
    unknown = [s for s in splits if s not in names]
    if unknown:
        raise ValueError(f"Unknown pipeline split(s) {unknown} for {spec.name}: valid block "
                         f"names are {', '.join(names)}.")
    positions = [names.index(s) for s in splits]
    if positions != sorted(set(positions)) or (positions and positions[0] == 0):
        raise ValueError(f"Pipeline splits {list(splits)} must be distinct, in model order and "
                         f"after block1a (each split starts a new stage).")


# Fields that were renamed, with the release that renamed them: old names still work.
RENAMED_FIELDS = {"group_dim": "group_size"}


def renamed_fields(fields: dict) -> dict:
    """``fields`` with old field names replaced by their new ones (and a FutureWarning)."""
    old = [name for name in fields if name in RENAMED_FIELDS]
    if not old:
        return fields
    fields = dict(fields)
    for name in old:
        new = RENAMED_FIELDS[name]
        warnings.warn(f"EfficientNetSpec field {name!r} is now called {new!r}; the old name "
                      f"will be removed.", FutureWarning, stacklevel=3)
        if new in fields:
            raise TypeError(f"give {new!r} only: {name!r} is its old name.")
        fields[new] = fields.pop(name)
    return fields


def valid_model_names() -> list[str]:
    return [f"{size}-G{g}-{norm.upper()}" for size in PRESETS for g in (1, 16) for norm in NORMS]


def _letter(repeat: int) -> str:
    # Keras names repeats a, b, c, ...; B7 needs at most 13 letters.
    return chr(ord("a") + repeat)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
