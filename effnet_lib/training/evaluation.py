"""Losses, metrics and validation: the same definitions for training, fine-tuning and testing."""

from __future__ import annotations

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
    from ..data import make_dataset

    valid = make_dataset(data, "validation", image_size, batch_size)
    if valid.num_examples is None:  # synthetic images never end: evaluating would not stop
        raise ValueError(f"{data!r} is synthetic data, endless and without labels worth scoring: "
                         f"validate on real data, e.g. --data shapes or --data folder:PATH (with "
                         f"the classes the model was trained on).")
    if class_names is not None and list(valid.class_names) != list(class_names):
        raise ValueError(f"{data}: its classes differ from the model's ({len(valid.class_names)} vs "
                         f"{len(class_names)}): validate on the data the model was trained on.")
    if model.input_shape[1] != image_size:
        model = at_size(model, image_size)
    model.compile(loss=loss_for(False), metrics=metrics_for(False, valid.num_classes),
                  jit_compile=False)
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
