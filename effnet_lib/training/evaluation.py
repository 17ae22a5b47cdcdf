"""Losses, metrics and validation: the same definitions for training, fine-tuning and testing."""

from __future__ import annotations

from pathlib import Path

import keras

from . import checkpoints


def loss_for(soft: bool):
    """Cross-entropy on logits, for soft (mixed or smoothed) or integer labels."""
    if soft:
        return keras.losses.CategoricalCrossentropy(from_logits=True)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def metrics_for(soft: bool, num_classes: int):
    """Top-1 and top-5 (top-k of fewer classes) for soft or integer labels."""
    k = min(5, num_classes)  # top-5 of a 4-class problem is top-4, i.e. always right
    if soft:
        return [keras.metrics.CategoricalAccuracy(name="top1"),
                keras.metrics.TopKCategoricalAccuracy(k, name="top5")]
    return [keras.metrics.SparseCategoricalAccuracy(name="top1"),
            keras.metrics.SparseTopKCategoricalAccuracy(k, name="top5")]


def evaluate(model, data: str, image_size: int, class_names=None, batch_size: int = 64) -> dict:
    """Top-1, top-5 and loss of ``model`` on the validation split at ``image_size``."""
    valid = validation_split(data, image_size, batch_size, class_names)
    if model.input_shape[1] != image_size:
        model = at_size(model, image_size)
    _compile_for_scoring(model, valid.num_classes)
    return _scores(model, valid, image_size)


class Validator:
    """Scores weights (top-1, top-5, loss) on the validation split at one image size.

    The data set, the model and its compiled test step are made once, so each call after
    the first only runs the step: a run that validates every epoch and then its final
    weights and averages traced a test step for each (about 3 s each for a tiny model on
    2 CPU cores) and built a model for each. The model is its own: the one training keeps
    its compiled state.
    """

    def __init__(self, spec, data: str, image_size: int, class_names=None, batch_size: int = 64):
        from ..models.builder import build_model

        self.valid = validation_split(data, image_size, batch_size, class_names)
        self.image_size = image_size
        self.model = build_model(spec, image_size=image_size)
        _compile_for_scoring(self.model, self.valid.num_classes)

    def __call__(self, weights) -> dict:
        """The scores of ``weights``: a list as ``model.get_weights()`` gives, or the folder of
        a checkpoint of the same network."""
        if isinstance(weights, (str, Path)):
            self.model.load_weights(Path(weights) / checkpoints.WEIGHTS)
        else:
            self.model.set_weights(weights)
        return _scores(self.model, self.valid, self.image_size)


def validation_split(data: str, image_size: int, batch_size: int, class_names=None):
    """The validation split of ``data`` at ``image_size``; a clear error for endless (synthetic)
    data or for classes other than ``class_names``."""
    from ..data import make_dataset

    valid = make_dataset(data, "validation", image_size, batch_size)
    if valid.num_examples is None:  # synthetic images never end: evaluating would not stop
        raise ValueError(f"{data!r} is synthetic data, endless and without labels worth scoring: "
                         f"validate on real data, e.g. --data shapes or --data folder:PATH (with "
                         f"the classes the model was trained on).")
    if class_names is not None and list(valid.class_names) != list(class_names):
        raise ValueError(f"{data}: its classes differ from the model's ({len(valid.class_names)} vs "
                         f"{len(class_names)}): validate on the data the model was trained on.")
    return valid


def _compile_for_scoring(model, num_classes: int) -> None:
    # No optimiser: nothing trains, and a checkpoint's optimiser slots are skipped on loading.
    model.compile(optimizer=None, loss=loss_for(False), metrics=metrics_for(False, num_classes),
                  jit_compile=False)


def _scores(model, valid, image_size: int) -> dict:
    values = model.evaluate(valid.dataset, verbose=0, return_dict=True)
    return dict(image_size=image_size, top1=float(values["top1"]), top5=float(values["top5"]),
                loss=float(values["loss"]), images=valid.num_examples)


def at_size(model, image_size: int):
    """The same weights in a model built for another input size (convolutions do not care)."""
    from ..models.builder import build_model

    resized = build_model(model.effnet_spec, image_size=image_size)
    resized.set_weights(model.get_weights())
    return resized


def validate(checkpoint, data: str | None = None, image_sizes=None, say=print) -> list[dict]:
    """Top-1/top-5/loss of a checkpoint at several test resolutions (the FixRes curve)."""
    model, meta = checkpoints.load_model(checkpoint)
    data = data or meta["data"]
    sizes = image_sizes or [meta["image_size"]]
    rows = []
    for size in sizes:
        if not (isinstance(size, int) and size >= 16):
            raise ValueError(f"image size {size!r}: it must be an integer >= 16.")
        row = evaluate(model, data, size, class_names=meta["class_names"])
        row["trained_at"] = meta["image_size"]
        rows.append(row)
        say(f"{size}px: top-1 {row['top1']:.4f}  top-5 {row['top5']:.4f}  loss {row['loss']:.4f}")
    return rows
