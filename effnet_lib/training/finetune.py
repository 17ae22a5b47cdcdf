"""Resolution fine-tuning: the paper's cheap step from the training to the test resolution.

A model trained at a low resolution with random crops sees objects larger than a
centre-cropped test image shows them; evaluated at a higher resolution it also
meets activation statistics it never saw. The paper's fix (after FixRes): start
from the weight average, train only the last layers ("Top", optionally block7 and
block6) for 2 epochs at the test size with the *validation* preprocessing, a
cosine schedule and ``2^-11`` per sample of the batch as peak learning rate.

The ``% 32`` rule: EfficientNet downsamples by 32, so ``train_size % 32`` decides
how the last feature map's border pixels line up with the image. Fine-tuning at a
size with the same remainder keeps that alignment (B0: 160 -> 224, both 0 mod 32);
a different one still works but starts further off.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras

from . import checkpoints, recipe
from .evaluation import evaluate, loss_for, metrics_for

TOP_LAYERS = ("top_", "predictions", "avg_pool", "top_dropout")


def matches(path: str, filters) -> bool:
    """Whether a variable path matches a ``--variable-filter`` term (case-insensitive substring).

    ``Top`` (the reference's name for the head) matches the head's layers:
    ``top_conv``, ``top_bn|gn|ln``, ``top_proxy_norm`` and ``predictions``.
    """
    lowered = path.lower()
    for term in filters:
        term = term.lower()
        if term == "top" and any(lowered.startswith(p) or f"/{p}" in lowered for p in TOP_LAYERS):
            return True
        if term != "top" and term in lowered:
            return True
    return False


def set_trainable(model: keras.Model, filters) -> tuple[int, int]:
    """Freeze every layer whose weights match no filter; (trainable, total) variable counts."""
    total = len(model.weights)
    if not filters:
        return len(model.trainable_weights), total
    for layer in model.layers:
        if layer.weights:
            layer.trainable = any(matches(w.path, filters) for w in layer.weights)
    trainable = len(model.trainable_weights)
    if trainable == 0:
        names = sorted({layer.name.split("_")[0] for layer in model.layers if layer.weights})
        raise ValueError(f"--variable-filter {' '.join(filters)} matches no variable; layer "
                         f"prefixes are: Top, {', '.join(names)}.")
    return trainable, total


def modulo_32_warning(train_size: int, finetune_size: int) -> str | None:
    if train_size % 32 == finetune_size % 32:
        return None
    return (f"train size {train_size} % 32 = {train_size % 32} but fine-tune size {finetune_size} "
            f"% 32 = {finetune_size % 32}: the network downsamples by 32, so the last feature map's "
            f"grid lines up with the image differently at the two sizes. The paper picks sizes with "
            f"equal remainders (B0: 160 -> 224); expect a smaller gain. Continuing.")


def finetune(init_path, image_size: int, *, data: str | None = None, run_dir=None,
             variable_filter=("Top",), train_with_valid_preprocessing: bool = True, epochs: int = 2,
             batch_size: int = 64, lr_schedule: str = "cosine", base_learning_rate_exponent: float = -11,
             label_smoothing: float = 0.1, seed: int = 0, reestimate_bn_statistics: bool = False,
             bn_batches: int = 20, progress: bool = True, say=print) -> dict:
    """Fine-tune a checkpoint at ``image_size``; save and return its validation there.

    ``reestimate_bn_statistics`` (BN models): first recompute the moving statistics
    of the BatchNorm layers that match ``variable_filter`` on ``bn_batches`` batches
    at the new size with the validation preprocessing (:mod:`.bn_statistics`).
    With ``epochs=0`` that is all that happens: FixRes's cheapest variant.
    """
    from ..data import Augmentation, make_dataset

    if not (isinstance(image_size, int) and image_size >= 16):
        raise ValueError(f"image_size={image_size!r}: it must be an integer >= 16.")
    if not (isinstance(epochs, int) and epochs >= (0 if reestimate_bn_statistics else 1)):
        raise ValueError(f"epochs={epochs!r}: it must be an integer >= 1 (or 0 together with "
                         f"re-estimating the BN statistics).")
    keras.utils.set_random_seed(seed)
    model, meta = checkpoints.load_model(init_path, image_size=image_size)
    data = data or meta["data"]
    warning = modulo_32_warning(meta["image_size"], image_size)
    if warning:
        say(f"warning: {warning}")
    trainable, total = set_trainable(model, list(variable_filter or ()))
    say(f"fine-tuning {trainable} of {total} variables "
        f"({', '.join(variable_filter) if variable_filter else 'all'}) at {image_size}px")
    augmentation = Augmentation(valid_preprocessing=train_with_valid_preprocessing,
                                label_smoothing=label_smoothing)
    train_data = make_dataset(data, "train", image_size, batch_size, augmentation=augmentation,
                              repeat=True, seed=seed, progress=progress)
    if list(train_data.class_names) != list(meta["class_names"]):
        raise ValueError(f"{data}: its classes differ from the checkpoint's.")
    if reestimate_bn_statistics:
        _reestimate_bn_statistics(model, data, image_size, batch_size, variable_filter, bn_batches,
                                  seed, say)
    if epochs > 0:
        updates_per_epoch = train_data.steps_per_epoch
        peak = 2.0 ** base_learning_rate_exponent * batch_size
        lr = recipe.schedule(lr_schedule, peak, updates_per_epoch, epochs)
        soft = augmentation.soft_labels
        model.compile(optimizer=recipe.rmsprop(lr, rho=1 - 2.0 ** -14 * batch_size),
                      loss=loss_for(soft), metrics=metrics_for(soft, train_data.num_classes),
                      jit_compile=False)
        model.fit(train_data.dataset, epochs=epochs, steps_per_epoch=updates_per_epoch,
                  verbose=1 if progress else 0, shuffle=False)
    run_dir = Path(run_dir or Path(checkpoints.resolve(init_path)).parent / f"finetune-{image_size}")
    result = evaluate(model, data, image_size, class_names=meta["class_names"])
    result.update(trained_at=meta["image_size"], variables_trained=trainable, epochs=epochs)
    saved_meta = dict(meta, image_size=image_size, epoch=epochs, finetuned_from=str(init_path),
                      metrics=result)
    checkpoints.write(run_dir, model, saved_meta)
    (run_dir / "validation.json").write_text(json.dumps(result, indent=1))
    say(f"{image_size}px after fine-tuning: top-1 {result['top1']:.4f} (saved to {run_dir})")
    return result


def _reestimate_bn_statistics(model, data, image_size, batch_size, variable_filter, batches, seed,
                              say) -> None:
    from ..data import Augmentation, make_dataset
    from . import bn_statistics

    layers = bn_statistics.batchnorm_layers(
        model, lambda name: matches(name, list(variable_filter or ("",))))
    valid_view = make_dataset(data, "train", image_size, batch_size, repeat=False, seed=seed,
                              augmentation=Augmentation(valid_preprocessing=True), progress=False)
    shifts = bn_statistics.reestimate(model, valid_view.dataset, layers, max_batches=batches)
    say(f"re-estimated the statistics of {len(shifts)} BatchNorm layer(s) at {image_size}px "
        f"on {batches} batches; largest mean shift {max(shifts.values()):.3f} std "
        f"({max(shifts, key=shifts.get)})")
