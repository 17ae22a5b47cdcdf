"""Pipeline-stage balance: how a case's splits share the work between IPUs.

On an IPU a pipeline stage is a slice of the model on its own chip; a stage that
does more work than the others sets the pace. TF/Keras has no counterpart, so the
kit keeps the splits as data and reports the balance they give, from the counts.
"""

from __future__ import annotations

import pandas as pd

from ..models.spec import validate_splits
from .counts import Profile


def stage_balance(profile_: Profile, splits) -> pd.DataFrame:
    """Per pipeline stage: blocks, multiply-adds, parameters and activation memory.

    ``splits`` are block names; each one starts a new stage (``["block3b"]`` gives
    two stages: stem..block3a and block3b..head). ``imbalance`` is the stage's
    multiply-adds over the mean stage's: 1.0 everywhere is perfect balance.
    """
    splits = list(splits)
    validate_splits(profile_.spec, splits)
    order = ["stem"] + profile_.spec.block_names() + ["top"]
    stage_of, stage = {}, 0
    for name in order:
        if name in splits:
            stage += 1
        stage_of[name] = stage
    layers = profile_.layers.assign(pipeline_stage=profile_.layers["block"].map(stage_of))
    table = layers.groupby("pipeline_stage").agg(
        first_block=("block", "first"), last_block=("block", "last"), macs=("macs", "sum"),
        params=("params", "sum"), norm_params=("norm_params", "sum"),
        activation_bytes=("activation_bytes", "sum")).reset_index()
    table["imbalance"] = table["macs"] / table["macs"].mean()
    return table



def balanced_splits(profile_: Profile, stages: int) -> list[str]:
    """The block names that split the model into ``stages`` pipeline stages with the smallest
    possible largest stage (in multiply-adds): the best a pipeline of that many devices can
    do when each stage is a run of whole blocks.

    Exact, by dynamic programming over the blocks (a few dozen even for B7): the cost of the
    first ``j`` blocks in ``k`` stages is the best over the last stage's start ``i`` of
    ``max(cost of the first i blocks in k-1 stages, multiply-adds of blocks i..j-1)``.
    """
    order = ["stem"] + profile_.spec.block_names() + ["top"]
    # A stage starts at a block after block1a (as the reference's splits do): positions 2..n-2.
    most = len(order) - 3
    if not (isinstance(stages, int) and 1 <= stages <= most):
        raise ValueError(f"stages={stages!r}: it must be an integer from 1 to {most} (a split "
                         f"starts a stage at a block of {profile_.spec.name} after block1a).")
    per_block = profile_.layers.groupby("block")["macs"].sum()
    macs = [float(per_block.get(name, 0.0)) for name in order]
    prefix = [0.0]
    for value in macs:
        prefix.append(prefix[-1] + value)
    n = len(order)
    best = [[float("inf")] * (n + 1) for _ in range(stages + 1)]
    start = [[0] * (n + 1) for _ in range(stages + 1)]
    best[0][0] = 0.0
    for k in range(1, stages + 1):
        for j in range(k, n + 1):
            for i in ([0] if k == 1 else range(max(2, k), min(j, n - 1))):
                cost = max(best[k - 1][i], prefix[j] - prefix[i])
                if cost < best[k][j]:
                    best[k][j], start[k][j] = cost, i
    splits, j = [], n
    for k in range(stages, 0, -1):
        i = start[k][j]
        if k > 1:
            splits.append(order[i])
        j = i
    return splits[::-1]
