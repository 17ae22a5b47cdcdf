"""Resolution fine-tuning: the paper's cheap step from the training to the test resolution.

A model trained at a low resolution with random crops sees objects larger than a
centre-cropped test image shows them; evaluated at a higher resolution it also
meets activation statistics it never saw. The paper's fix (after FixRes): start
from the weight average, train only the last layers ("Top", optionally block7 and
block6) for 2 epochs at the test size with the *validation* preprocessing, a
cosine schedule and ``2^-11`` per sample of a global batch of 512 as peak learning
rate (:func:`finetune` says how the reference ran it).

The ``% 32`` rule: EfficientNet downsamples by 32, so ``train_size % 32`` decides
how the last feature map's border pixels line up with the image. Fine-tuning at a
size with the same remainder keeps that alignment (B0: 160 -> 224, both 0 mod 32);
a different one still works but starts further off.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras

from ..common.optimizer_slots import build_optimizer_slots
from ..common.precision import precision
from . import checkpoints, recipe
from .cases import CaseConfig
from .evaluation import evaluate, loss_for, metrics_for
from .train import case_augmentation

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
             batch_size: int = 64, gradient_accumulation_count: int = 8,
             lr_schedule: str = "cosine", base_learning_rate_exponent: float = -11,
             warmup_epochs: float = 5, seed: int = 0, reestimate_bn_statistics: bool = False,
             bn_batches: int = 20, progress: bool = True, say=print) -> dict:
    """Fine-tune a checkpoint at ``image_size``; save and return its validation there.

    As the paper's README ran it (``--init-path RUN/ckpt/weight_avg_exp_0.97 --lr-schedule
    cosine --epochs 2 --train-with-valid-preprocessing --base-learning-rate -11
    --variable-filter Top``, global batch 512):

    * the global batch is ``batch_size`` (the micro-batch) x ``gradient_accumulation_count``
      (512 by default); peak learning rate ``2^-11`` per image of it and RMSprop's ``rho``
      from it, with the training case's formulas;
    * the run's case stays in force (read from the checkpoint): its precision, Mixup,
      CutMix, label smoothing, weight decay; dropout and drop-connect stay active;
    * the schedule is the cosine with its default **5 warm-up epochs**, which outlast a
      2-epoch run: the rate climbs along the warm-up while the cosine falls, peaking at
      about a tenth of the nominal peak. That was an accident of the reference, but it is
      what produced the paper's numbers; ``warmup_epochs=0`` gives the plain cosine.

    ``reestimate_bn_statistics`` (BN models): first recompute the matching BatchNorm layers'
    moving statistics on ``bn_batches`` batches at the new size (:mod:`.bn_statistics`);
    with ``epochs=0`` that is all that happens: FixRes's cheapest variant.
    """
    from ..common.precision import dtype_policy
    from ..data import make_dataset
    _check_sizes(image_size, epochs, reestimate_bn_statistics)
    keras.utils.set_random_seed(seed)
    meta = checkpoints.read_meta(checkpoints.resolve(init_path))
    case = finetune_case(meta, image_size, batch_size, gradient_accumulation_count, epochs,
                         lr_schedule, base_learning_rate_exponent, warmup_epochs)
    with dtype_policy(case.precision):
        model, meta = checkpoints.load_model(init_path, image_size=image_size)
    data = data or meta["data"]
    if warning := modulo_32_warning(meta["image_size"], image_size):
        say(f"warning: {warning}")
    trainable, total = set_trainable(model, list(variable_filter or ()))
    say(f"fine-tuning {trainable} of {total} variables "
        f"({', '.join(variable_filter) if variable_filter else 'all'}) at {image_size}px, global "
        f"batch {case.global_batch_size} ({batch_size} x {gradient_accumulation_count}), peak lr "
        f"{case.learning_rate:.4g}, {warmup_epochs:g} warm-up epochs")
    augmentation = case_augmentation(case, valid_preprocessing=train_with_valid_preprocessing)
    train_data = make_dataset(data, "train", image_size, batch_size, augmentation=augmentation,
                              repeat=True, seed=seed, progress=progress)
    if list(train_data.class_names) != list(meta["class_names"]):
        raise ValueError(f"{data}: its classes differ from the checkpoint's.")
    if reestimate_bn_statistics:  # before training: the new statistics are what it trains on
        _reestimate_bn_statistics(model, data, image_size, batch_size, variable_filter, bn_batches,
                                  seed, say)
    if epochs > 0:
        _train(model, case, train_data, augmentation.soft_labels, progress)
    run_dir = Path(run_dir or Path(checkpoints.resolve(init_path)).parent / f"finetune-{image_size}")
    result = evaluate(model, data, image_size, class_names=meta["class_names"])
    result.update(trained_at=meta["image_size"], variables_trained=trainable, epochs=epochs,
                  global_batch=case.global_batch_size)
    _save(run_dir, model, meta, case, result, init_path)
    say(f"{image_size}px after fine-tuning: top-1 {result['top1']:.4f} (saved to {run_dir})")
    return result


def _save(run_dir: Path, model, meta: dict, case: CaseConfig, result: dict, init_path) -> None:
    checkpoints.write(run_dir, model, dict(meta, image_size=case.image_size, epoch=result["epochs"],
                                           finetuned_from=str(init_path), metrics=result,
                                           case=dataclasses.asdict(case)))
    (run_dir / "validation.json").write_text(json.dumps(result, indent=1))


def _check_sizes(image_size, epochs, reestimate_bn_statistics) -> None:
    if not (isinstance(image_size, int) and image_size >= 16):
        raise ValueError(f"image_size={image_size!r}: it must be an integer >= 16.")
    if not (isinstance(epochs, int) and epochs >= (0 if reestimate_bn_statistics else 1)):
        raise ValueError(f"epochs={epochs!r}: it must be an integer >= 1 (or 0 together with "
                         f"re-estimating the BN statistics).")


def finetune_case(meta: dict, image_size: int, batch_size: int, accumulation: int, epochs: int,
                  lr_schedule: str, base_learning_rate_exponent: float,
                  warmup_epochs: float) -> CaseConfig:
    """The checkpoint's case with the fine-tuning step's batch layout and schedule."""
    fields = {f.name for f in dataclasses.fields(CaseConfig)}
    saved = {k: v for k, v in (meta.get("case") or {}).items() if k in fields}
    if not saved:
        raise ValueError("the checkpoint records no training case (meta.json has no 'case'): "
                         "fine-tune a checkpoint written by effnet train.")
    for name, value in (("batch_size", batch_size), ("gradient_accumulation_count", accumulation)):
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{name}={value!r}: it must be an integer >= 1.")
    return CaseConfig(**saved).replace(
        image_size=image_size, micro_batch_size=batch_size, gradient_accumulation_count=accumulation,
        replicas=1, pipeline_stages=1, pipeline_splits=(), epochs=max(epochs, 1),
        lr_schedule=lr_schedule, base_learning_rate_exponent=base_learning_rate_exponent,
        warmup_epochs=warmup_epochs)


def _train(model, case: CaseConfig, train_data, soft: bool, progress: bool) -> None:
    accumulation = case.gradient_accumulation_count
    updates_per_epoch = train_data.steps_per_epoch // accumulation
    if updates_per_epoch < 1:
        raise ValueError(f"{train_data.num_examples} training images are fewer than one global "
                         f"batch ({case.micro_batch_size} x {accumulation}): lower --batch-size or "
                         f"--gradient-accumulation-count.")
    epochs = int(case.epochs)
    optimizer = recipe.optimizer_for(case, updates_per_epoch, epochs, accumulation,
                                     loss_scaled=precision(case.precision).loss_scaled)
    model.compile(optimizer=optimizer, loss=loss_for(soft),
                  metrics=metrics_for(soft, train_data.num_classes), jit_compile=False,
                  auto_scale_loss=False)
    build_optimizer_slots(model)
    model.fit(train_data.dataset, epochs=epochs, steps_per_epoch=updates_per_epoch * accumulation,
              verbose=1 if progress else 0, shuffle=False)


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
