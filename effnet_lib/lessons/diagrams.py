"""Drawn diagrams for the lessons: an MBConv block with its real shapes and costs."""

from __future__ import annotations

from ..models.spec import EfficientNetSpec
from ..profiling import profile


def block_steps(spec: EfficientNetSpec, block_name: str, image_size: int | None = None) -> list[dict]:
    """The layers of one MBConv block in order: what each does, its output and multiply-adds."""
    prof = profile(spec, image_size=image_size)
    rows = prof.layers[prof.layers.block == block_name]
    block = next(b for b in spec.blocks() if b.name == block_name)
    by_kind = {row.layer.removeprefix(f"{block_name}_"): row for row in rows.itertuples()}
    spatial = "dwconv" if block.depthwise else "gconv"
    per_group = block.expanded_filters // block.groups
    steps = []
    if block.expand_ratio != 1:
        steps.append(("expand", f"expand: 1x1 conv to {block.expanded_filters} channels\n"
                                f"(x{block.expand_ratio}), norm, activation", "expand_conv"))
    kind = ("depthwise" if block.depthwise else
            f"grouped, {block.groups} groups of {per_group}")
    steps.append(("spatial", f"{block.kernel_size}x{block.kernel_size} conv ({kind}), "
                             f"stride {block.stride},\nnorm, activation", spatial))
    if block.se_filters:
        steps.append(("se", f"squeeze-excite: pool, 1x1 to {block.se_filters}, 1x1 to "
                            f"{block.expanded_filters},\nsigmoid gate x features", "se_reduce"))
    steps.append(("project", f"project: 1x1 conv to {block.filters_out} channels, norm",
                  "project_conv"))
    result = []
    for role, text, layer in steps:
        row = by_kind[layer]
        macs = (rows[rows.layer.str.contains("_se_")].macs.sum() if role == "se" else row.macs)
        shape = tuple(by_kind["se_excite"].output_shape) if role == "se" else tuple(row.output_shape)
        result.append(dict(role=role, text=text, output_shape=shape, macs=int(macs)))
    if block.has_skip:
        result.append(dict(role="skip", text="+ block input (residual; drop-connect in training)",
                           output_shape=tuple(by_kind["add"].output_shape), macs=0))
    return result


def draw_mbconv(ax, spec: EfficientNetSpec, block_name: str, image_size: int | None = None,
                title: str | None = None) -> None:
    """Draw one block as a column of boxes, input at the top, with shapes and multiply-adds."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    steps = block_steps(spec, block_name, image_size)
    block = next(b for b in spec.blocks() if b.name == block_name)
    colours = dict(expand="#cfe2f3", spatial="#f9cb9c", se="#d9ead3", project="#cfe2f3",
                   skip="#eeeeee")
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.5, len(steps) + 1.2)
    ax.axis("off")
    size = image_size or spec.resolution
    ax.text(5, len(steps) + 0.8, f"input {_shape_text(_input_shape(spec, block, size))}",
            ha="center", va="center", fontsize=8)
    for i, step in enumerate(steps):
        y = len(steps) - 1 - i
        box = FancyBboxPatch((0.4, y + 0.12), 9.2, 0.72, boxstyle="round,pad=0.02",
                             facecolor=colours[step["role"]], edgecolor="#555555")
        ax.add_patch(box)
        cost = _macs_text(step["macs"])
        ax.text(0.7, y + 0.48, step["text"], ha="left", va="center", fontsize=7.5)
        ax.text(9.4, y + 0.3, f"{_shape_text(step['output_shape'])}   {cost}", ha="right",
                va="center", fontsize=7, color="#333333")
        ax.add_patch(FancyArrowPatch((5, y + 1.12), (5, y + 0.86), arrowstyle="-|>",
                                     mutation_scale=8, color="#555555"))
    ax.set_title(title or f"{spec.name} {block_name} at {size} px", fontsize=9)


def _input_shape(spec, block, size):
    prof = profile(spec, image_size=size).layers
    first = prof[prof.block == block.name].iloc[0]
    return tuple(first.input_shape)


def _macs_text(macs: int) -> str:
    if not macs:
        return ""
    return f"{macs / 1e6:.2f} M multiply-adds" if macs >= 1e5 else f"{macs / 1e3:.1f} k multiply-adds"


def _shape_text(shape) -> str:
    return " x ".join(str(int(v)) for v in shape)
