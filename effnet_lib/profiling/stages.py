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

