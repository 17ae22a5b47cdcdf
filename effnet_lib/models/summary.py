"""Per-block summary of a built model: the architecture at a glance.

Shapes and groups come from the spec; parameter counts are read from the built
Keras model's weights, so the table shows what was really built.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .spec import EfficientNetSpec

COLUMNS = ["block", "stage", "kernel", "stride", "in", "out", "expansion", "expanded",
           "groups", "group_size", "skip", "output_size", "parameters"]


def block_summary(model, spec: EfficientNetSpec, image_size: int | None = None) -> pd.DataFrame:
    """One row for the stem, each MBConv block, the head and the classifier.

    ``parameters`` counts trainable weights; ``skip`` says whether the block has a
    residual connection; ``output_size`` is the spatial size of the block's output.
    """
    size = spec.resolution if image_size is None else image_size
    trainable = _trainable_by_prefix(model)
    resolution = math.ceil(size / 2)
    rows = [dict(block="stem", stage=0, kernel=3, stride=2, **{"in": 3}, out=spec.stem_filters,
                 expansion=None, expanded=None, groups=1, group_size=3, skip=False,
                 output_size=resolution, parameters=trainable.pop("stem", 0))]
    for b in spec.blocks():
        resolution = math.ceil(resolution / b.stride)
        rows.append(dict(block=b.name, stage=b.stage, kernel=b.kernel_size, stride=b.stride,
                         **{"in": b.filters_in}, out=b.filters_out, expansion=b.expand_ratio,
                         expanded=b.expanded_filters, groups=b.groups,
                         group_size=b.expanded_filters // b.groups, skip=b.has_skip,
                         output_size=resolution, parameters=trainable.pop(b.name, 0)))
    last = spec.blocks()[-1].filters_out
    rows.append(dict(block="top", stage=8, kernel=1, stride=1, **{"in": last}, out=spec.top_filters,
                     expansion=None, expanded=None, groups=1, group_size=last, skip=False,
                     output_size=resolution, parameters=trainable.pop("top", 0)))
    rows.append(dict(block="predictions", stage=8, kernel=None, stride=None,
                     **{"in": spec.top_filters}, out=spec.num_classes, expansion=None,
                     expanded=None, groups=1, group_size=spec.top_filters, skip=False,
                     output_size=1, parameters=trainable.pop("predictions", 0)))
    if trainable:
        raise RuntimeError(f"Weights outside any known block: {sorted(trainable)}")
    table = pd.DataFrame(rows, columns=COLUMNS)
    integer = ["stage", "kernel", "stride", "in", "out", "expansion", "expanded", "groups",
               "group_size", "output_size", "parameters"]
    return table.astype({column: "Int64" for column in integer})  # Int64 keeps blanks blank


def skip_statistics(spec: EfficientNetSpec) -> dict:
    """How many blocks carry a residual connection (practitioners compare this across sizes)."""
    blocks = spec.blocks()
    with_skip = sum(b.has_skip for b in blocks)
    return {"blocks": len(blocks), "with_skip": with_skip, "without_skip": len(blocks) - with_skip,
            "skip_ratio": with_skip / len(blocks)}


def count_weights(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


def _trainable_by_prefix(model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for layer in model.layers:
        n = count_weights(layer.trainable_weights)
        if n:
            prefix = layer.name.split("_")[0]
            counts[prefix] = counts.get(prefix, 0) + n
    return counts
