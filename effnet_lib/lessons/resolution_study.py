"""Half-resolution training and a short fine-tune at the test size, measured small (lesson 04).

The paper trains at about half the pixels ("Half", B0: 160 px) and fine-tunes the head for
two epochs at the test size (224 px), against training at the test size ("Native"), which
it fine-tunes too. Here the same steps run on a small EfficientNet and the embedded data:

* a model trained at ``half`` and one at ``native`` (:func:`effnet_lib.train`, cached);
* the half model validated at test sizes around the size where its training crops show
  objects as large as test images do (:mod:`.apparent_size`): the FixRes curve;
* each model's last layers fine-tuned at ``native`` (``effnet_lib.finetune``, cached), with
  the reference's wider variable filter (``Top``, ``block7``, ``block6``); the half model's
  head alone (``Top``, the reference's default) as a comparison;
* the multiply-adds of every phase, forward and backward: a training step costs a forward
  pass and a backward pass of about twice its multiply-adds; fine-tuning the last layers
  costs the whole forward pass but a backward pass through those layers only.

Every accuracy is one trained model on the validation split; its 95% interval is Wilson's
for that many images (validation sampling, not training seeds: one seed per model).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..common.stats import proportion_ci
from ..data.preprocessing import AREA_RANGE
from ..profiling import profile
from .run_cache import cached_result, cached_train
from .small_scale import forward_macs, small_case

BUDGETS = {
    "smoke": dict(half=24, native=32, epochs=1, finetune_epochs=1, batch=8, source=32,
                  data=dict(train=96, validation=40), width=0.25, depth=0.25),
    "quick": dict(half=40, native=56, epochs=10, finetune_epochs=2, batch=32, source=64,
                  data=dict(train=3200, validation=800), width=0.5, depth=0.5),
    "full": dict(half=64, native=96, epochs=30, finetune_epochs=2, batch=32, source=128,
                 data=dict(train=10000, validation=2000), width=0.5, depth=0.5),
}
MODEL = "B0-G16-GN"  # the paper's Half variant is G16
LEARNING_RATE_EXPONENT = -10
# The reference fine-tunes the head ("Top") and offers block7 and block6 besides. On these
# small models the head alone does not undo the change of resolution (the lesson shows both),
# so the lesson fine-tunes the wider set, for the native model too.
FINETUNE_FILTER = ("Top", "block7", "block6")
HEAD_FILTER = ("Top",)
TRAINING_CROPS = AREA_RANGE  # the paper's: a box of 5-100% of the area requested


def settings(budget: str) -> dict:
    return BUDGETS[budget]


def model_overrides(budget: str) -> dict:
    s = BUDGETS[budget]
    return dict(width_coefficient=s["width"], depth_coefficient=s["depth"])


def train_at(size: int, data: str, budget: str, seed: int = 0, say=print) -> dict:
    """The model trained at ``size`` px (cached)."""
    s = BUDGETS[budget]
    case = small_case(MODEL, image_size=size, epochs=s["epochs"], micro_batch_size=s["batch"],
                      base_learning_rate_exponent=LEARNING_RATE_EXPONENT)
    # The paper's crops, not the small-scale default: the train/test discrepancy they
    # cause is what this lesson is about.
    case = case.replace(crop_area_range=TRAINING_CROPS)
    return cached_train(case, data, seed=seed, say=say, model_overrides=model_overrides(budget))


def fixres_curve(run: dict, data: str, sizes, say=print) -> pd.DataFrame:
    """Top-1 of a trained run's final weights at several test sizes, with Wilson intervals."""
    from ..training.evaluation import validate

    def compute():
        return dict(rows=validate(run["run_dir"], data=data, image_sizes=list(sizes),
                                  say=lambda *_: None))

    rows = cached_result("fixres", dict(run=run["key"], sizes=list(sizes), data=data), compute,
                         say=say)["rows"]
    return with_intervals(pd.DataFrame(rows))


def finetune_at(run: dict, data: str, size: int, budget: str,
                variable_filter=FINETUNE_FILTER, say=print) -> dict:
    """The run's variables matching ``variable_filter`` fine-tuned at ``size`` px (cached): the
    paper's step at a small scale."""
    from ..training import checkpoints
    from ..training.finetune import finetune

    s = BUDGETS[budget]
    options = dict(epochs=s["finetune_epochs"], batch_size=s["batch"], gradient_accumulation_count=1,
                   warmup_epochs=0, variable_filter=tuple(variable_filter))

    def compute():
        final = checkpoints.latest(run["run_dir"])  # final weights: see the lesson
        return finetune(final, size, data=data, run_dir=f"{run['run_dir']}/finetune-{size}",
                        progress=False, say=lambda *_: None, **options)

    return cached_result("finetune", dict(run=run["key"], size=size, data=data, **options),
                         compute, say=say)


def with_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """``top1_low``, ``top1_high``: Wilson's 95% interval of each accuracy."""
    intervals = [proportion_ci(int(round(t * n)), int(n)) for t, n in zip(table.top1, table.images)]
    return table.assign(top1_low=[i.low for i in intervals], top1_high=[i.high for i in intervals])


def training_cost(size: int, images: int, budget: str) -> float:
    """Multiply-adds of training on ``images`` images at ``size``: forward + backward (3x)."""
    return 3.0 * forward_macs(small_case(MODEL), size, images, **model_overrides(budget))


def finetune_cost(size: int, images: int, budget: str, variable_filter=FINETUNE_FILTER) -> float:
    """Multiply-adds of fine-tuning the blocks ``variable_filter`` names: the whole forward
    pass, and the backward pass (about twice the forward) of those blocks only."""
    spec = small_case(MODEL).model_spec(**model_overrides(budget))
    layers = profile(spec, image_size=size).layers
    terms = [term.lower() for term in variable_filter]
    tuned = layers.block.str.lower().map(lambda block: any(term in block for term in terms))
    return float(layers.macs.sum() + 2 * layers[tuned].macs.sum()) * images


def predicted_test_sizes(train_size: int, crops: np.ndarray, around: int = 3, step: int = 4):
    """The apparent-size prediction for ``train_size``, and test sizes around it."""
    from .apparent_size import matching_test_size

    predicted = matching_test_size(train_size, crops)
    centre = int(round(predicted / step) * step)
    sizes = sorted({train_size, *[centre + step * k for k in range(-around, around + 1)]})
    return predicted, [s for s in sizes if s >= 16]
