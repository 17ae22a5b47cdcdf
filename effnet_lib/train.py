"""Training and validation: the paper's recipe on CPU, GPU or several of them, resumable.

The IPU kit's controls, mapped:

* **Global batch** = micro-batch x gradient accumulation x replicas, whatever the
  hardware: replicas that the machine does not have are folded into gradient
  accumulation (8 replicas on 1 device accumulate 8x longer).
* **Replicas** are ``tf.distribute`` replicas: one device, ``MirroredStrategy``
  over local GPUs, ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names a
  cluster. **Pipeline stages** have no TF/Keras counterpart: the model runs whole
  on each replica and the global batch is kept through accumulation.
* **Device iterations** are Keras's ``steps_per_execution``, set from
  ``logs_per_epoch`` by :mod:`effnet_lib.host_events`.
* **Precision** "32.32" is float32; "16.32" is ``mixed_float16`` (float32 master
  weights) with loss scaling; "16.16" is float16 throughout; "bf16" is
  ``mixed_bfloat16`` for devices that prefer it.

A run folder holds epoch checkpoints (atomic, see :mod:`effnet_lib.checkpoints`),
the weight average, ``metrics.csv``, ``metrics.jsonl``, TensorBoard logs and
``run.json``. Running the same command again resumes after the last complete
checkpoint, with the schedule at the same weight update.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from . import checkpoints, recipe
from .cases import CaseConfig, load_case
from .checkpoints import spec_to_dict
from .host_events import host_events
from .multiworker import fit_across_workers, is_multi_worker

PRECISIONS = {"32.32": "float32", "32": "float32", "16.32": "mixed_float16",
              "16.16": "float16", "bf16": "mixed_bfloat16"}


@dataclass
class TrainResult:
    run_dir: str
    epochs_done: int
    updates: int
    resumed_from: int
    history: list
    validation: dict | None
    stopped: str | None = None
    model: object = None  # the trained keras.Model (latest weights)


def strategy_for(replicas: int):
    """A ``tf.distribute`` strategy with as many replicas as the machine gives, up to ``replicas``."""
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if replicas > 1 and len(gpus) > 1:
        return tf.distribute.MirroredStrategy([g.name for g in gpus[:replicas]])
    return tf.distribute.get_strategy()


def fold_replicas(case: CaseConfig, available: int) -> tuple[int, int, list[str]]:
    """(replicas used, gradient accumulation) keeping the case's global batch; notes to print."""
    notes = []
    if case.pipeline_stages > 1:
        notes.append(f"{case.name}: {case.pipeline_stages} pipeline stages have no TF/Keras "
                     f"counterpart; each replica runs the whole model and the global batch "
                     f"({case.global_batch_size}) is kept through gradient accumulation.")
    used = min(case.replicas, available)
    if case.replicas % used:
        raise ValueError(f"{case.name}: {case.replicas} replicas cannot be folded onto {used} "
                         f"devices evenly; use --replicas {used} or a divisor of {case.replicas}.")
    accumulation = case.gradient_accumulation_count * (case.replicas // used)
    if used != case.replicas:
        notes.append(f"{case.replicas} replicas on {used} device(s): gradient accumulation "
                     f"{case.gradient_accumulation_count} -> {accumulation}, global batch "
                     f"{case.global_batch_size} unchanged.")
    return used, accumulation, notes


def _loss(soft: bool):
    if soft:
        return keras.losses.CategoricalCrossentropy(from_logits=True)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _metrics(soft: bool, num_classes: int):
    k = min(5, num_classes)  # top-5 of a 4-class problem is top-4, i.e. always right
    if soft:
        return [keras.metrics.CategoricalAccuracy(name="top1"),
                keras.metrics.TopKCategoricalAccuracy(k, name="top5")]
    return [keras.metrics.SparseCategoricalAccuracy(name="top1"),
            keras.metrics.SparseTopKCategoricalAccuracy(k, name="top5")]


class _RunLog(keras.callbacks.Callback):
    """Metrics to JSON lines, NaN guard, atomic checkpoints and the weight average."""

    def __init__(self, run_dir: Path, meta: dict, updates_per_log: int, logs_per_checkpoint: int,
                 average_decay: float, write: bool, say, saved_model=None, data=None):
        super().__init__()
        self.data = data  # to report skipped corrupt images as they are counted
        self.saved_model = saved_model  # the model checkpoints hold, if not the one trained
        self.run_dir, self.meta, self.say = run_dir, meta, say
        self.updates_per_log = updates_per_log
        self.logs_per_checkpoint = logs_per_checkpoint
        self.average_decay = average_decay
        self.write = write
        self.stopped = None
        self.average = None
        self.reached = None  # epoch and updates at the last checkpoint boundary, written or not
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            update = int(self.model.optimizer.iterations.numpy())
            self.stopped = (f"the loss became {float(loss)} at weight update {update}; training "
                            f"stopped. The last good checkpoint is {checkpoints.latest(self.run_dir)}. "
                            f"Lower the learning rate (--base-learning-rate-exponent) or use "
                            f"precision 32.32 to find the cause.")
            self.model.stop_training = True

    def on_epoch_end(self, log_index, logs=None):
        if self.stopped:
            return
        logs = {k: float(v) for k, v in (logs or {}).items()}
        updates = int(self.model.optimizer.iterations.numpy())
        record = dict(log=log_index + 1, updates=updates, seconds=time.perf_counter() - self.started,
                      learning_rate=float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                      **logs)
        if self.data is not None and self.data.skipped():
            record["skipped_corrupt_images"] = self.data.skipped()
            self.say(f"skipped {self.data.skipped()} corrupt images so far")
        if self.write:
            with open(self.run_dir / "metrics.jsonl", "a") as out:
                out.write(json.dumps(record) + "\n")
        if (log_index + 1) % self.logs_per_checkpoint:
            return
        epoch = (log_index + 1) // self.logs_per_checkpoint * self.meta["epochs_per_checkpoint"]
        self.reached = dict(epoch=epoch, updates=updates)
        self._update_average()
        if self.write:
            meta = dict(self.meta, epoch=epoch, updates=updates, metrics=logs)
            checkpoints.write(checkpoints.epoch_folder(self.run_dir, epoch), self._saved, meta)
            self._write_average(meta)
            checkpoints.prune(self.run_dir)

    @property
    def _saved(self):
        return self.saved_model or self.model

    def _update_average(self):
        weights = [np.array(w) for w in self._saved.get_weights()]
        if self.average is None:
            self.average = weights
        else:
            d = self.average_decay
            self.average = [d * a + (1 - d) * w for a, w in zip(self.average, weights)]

    def _write_average(self, meta):
        model = self._saved
        current = model.get_weights()
        model.set_weights(self.average)
        try:
            checkpoints.write(Path(self.run_dir) / checkpoints.AVERAGE, model,
                              dict(meta, average_decay=self.average_decay))
        finally:
            model.set_weights(current)


def train(case: CaseConfig | str, *, data: str = "shapes", run_dir: str | None = None,
          epochs: int | None = None, logs_per_epoch="1", training: bool = True,
          validation: bool = True, l2_regularization: float = 0.0, seed: int = 0,
          model_overrides: dict | None = None, max_updates_per_epoch: int | None = None,
          data_options: dict | None = None, progress: bool = True, say=print) -> TrainResult:
    """Train a case (or a case with overrides) on ``data``; resume if ``run_dir`` has a checkpoint.

    Args:
        case: a :class:`CaseConfig` or case name; flags of the IPU kit are its fields
            (``case.replace(micro_batch_size=16, ...)``).
        data: a source of :func:`effnet_lib.data.make_dataset`.
        epochs: whole epochs (default: the case's, rounded).
        logs_per_epoch: host events per epoch, as the IPU kit's flag (``"2"``, ``"1/2"``, ``0``).
        model_overrides: spec fields for small experiments (``width_coefficient=0.5``).
        max_updates_per_epoch: cap an epoch's weight updates (quick runs on big data).
        data_options: more arguments of ``make_dataset`` for training (``crop_area_range``).
    """
    case = load_case(case) if isinstance(case, str) else case
    epochs = int(epochs if epochs is not None else round(case.epochs))
    if epochs < 1:
        raise ValueError(f"epochs={epochs!r}: it must be >= 1.")
    run_dir = Path(run_dir or Path("runs") / case.name)
    # A multi-worker strategy must exist before TensorFlow runs anything else.
    strategy = strategy_for(case.replicas)
    keras.utils.set_random_seed(seed)
    from .data import make_dataset
    from .efficientnet import build_model

    replicas, accumulation, notes = fold_replicas(case, strategy.num_replicas_in_sync)
    for note in notes:
        say(note)
    chief = not os.environ.get("TF_CONFIG") or strategy.cluster_resolver.task_id == 0
    micro_step_batch = case.micro_batch_size * replicas

    mixing = dict(mixup_alpha=case.mixup_alpha, cutmix_lambda=case.cutmix_lambda or 1.0,
                  label_smoothing=case.label_smoothing)
    # The data set is batched with the global micro-step batch; under a strategy,
    # tf.distribute shards it across workers and splits batches across replicas.
    train_data = make_dataset(data, "train", case.image_size, micro_step_batch, repeat=True, seed=seed,
                              progress=progress, **mixing, **(data_options or {}))
    across_workers = is_multi_worker(strategy)  # Keras's fit cannot run there: our own loop
    if strategy.num_replicas_in_sync > 1 and not across_workers:
        # Keras builds a distributed model by averaging one input batch across
        # replicas (strategy.reduce), which cross-device ops do not all define for
        # uint8: send float32 images.
        import tensorflow as tf

        train_data.dataset = train_data.dataset.map(lambda x, y: (tf.cast(x, tf.float32), y))
    soft = mixing["mixup_alpha"] > 0 or mixing["cutmix_lambda"] < 1 or mixing["label_smoothing"] > 0
    micro_steps = train_data.steps_per_epoch or 100  # synthetic data: 100 micro-steps an epoch
    updates_per_epoch = micro_steps // accumulation
    if max_updates_per_epoch:
        updates_per_epoch = min(updates_per_epoch, max_updates_per_epoch)
    if updates_per_epoch < 1:
        raise ValueError(f"{data} has {train_data.num_examples} training images, fewer than one "
                         f"global batch ({case.micro_batch_size} x {accumulation} x {replicas}); "
                         f"lower --batch-size or --gradient-accumulation-count.")
    events = host_events(logs_per_epoch, updates_per_epoch, epochs)
    for warning in events.warnings:
        say(f"warning: {warning}")
    updates_per_log = events.steps_per_execution
    total_logs = events.executions
    epochs_per_checkpoint = max(1, updates_per_log // updates_per_epoch)
    logs_per_checkpoint = max(1, updates_per_epoch // updates_per_log)

    policy = PRECISIONS.get(str(case.precision))
    if policy is None:
        raise ValueError(f"precision={case.precision!r}: accepted {', '.join(PRECISIONS)}.")
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        with strategy.scope():
            spec = case.model_spec(num_classes=train_data.num_classes, **(model_overrides or {}))
            model = build_model(spec)
            l2_count = recipe.add_l2_regularization(model, l2_regularization)
            lr = recipe.schedule(case.lr_schedule, case.learning_rate, updates_per_epoch, epochs,
                                 case.warmup_epochs, case.lr_decay_rate, case.lr_decay_epochs)
            # Across workers the training loop accumulates gradients itself (see multiworker.py).
            optimizer = recipe.rmsprop(lr, case.rmsprop_rho, case.rmsprop_epsilon, case.momentum,
                                       case.weight_decay, 1 if across_workers else accumulation)
            if policy == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=case.loss_scaling)
            # With synthetic-device data the images are drawn inside the step; the
            # checkpoints still hold the plain model.
            model = train_data.wrap_model(core := model)
            model.compile(optimizer=optimizer, loss=_loss(soft), metrics=_metrics(soft, train_data.num_classes),
                          steps_per_execution=updates_per_log * accumulation, jit_compile=False)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    if l2_count:
        say(f"L2 regularisation {l2_regularization} on {l2_count} weight tensors (norm parameters excluded).")

    meta = dict(case=asdict(case), spec=spec_to_dict(spec), image_size=case.image_size,
                class_names=train_data.class_names, data=data, seed=seed, epochs_total=epochs,
                updates_per_epoch=updates_per_epoch, epochs_per_checkpoint=epochs_per_checkpoint,
                gradient_accumulation=accumulation, replicas=replicas)
    resumed_from = 0
    if chief:
        run_dir.mkdir(parents=True, exist_ok=True)
        checkpoints.clean_partials(run_dir)
    newest = checkpoints.latest(run_dir)
    if newest is not None:
        saved = checkpoints.read_meta(newest)
        _check_same_run(saved, meta, run_dir)
        # Built first, the optimiser takes its saved slots and update count from the file.
        model.optimizer.build(model.trainable_variables)
        core.load_weights(newest / "model.weights.h5")
        resumed_from = saved["epoch"]
        say(f"resuming {run_dir} after epoch {resumed_from} (weight update {saved['updates']}); "
            f"the learning-rate schedule and metrics log continue from there.")
    if chief:
        (run_dir / "run.json").write_text(json.dumps(meta, indent=1))

    log = _RunLog(run_dir, meta, updates_per_log, logs_per_checkpoint, case.weight_avg_exp, chief, say,
                  saved_model=core if core is not model else None, data=train_data)
    if newest is not None and (run_dir / checkpoints.AVERAGE / "model.weights.h5").is_file():
        average_model = build_model(spec)
        average_model.load_weights(run_dir / checkpoints.AVERAGE / "model.weights.h5")
        log.average = [np.array(w) for w in average_model.get_weights()]
    callbacks = [log]
    if chief:  # other workers train the same weights and write nothing
        callbacks += [keras.callbacks.CSVLogger(str(run_dir / "metrics.csv"), append=True),
                      keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False)]
    history = []
    initial_log = resumed_from * logs_per_checkpoint // epochs_per_checkpoint
    if training and initial_log < total_logs and across_workers:
        history = fit_across_workers(model, train_data.dataset, strategy, total_logs=total_logs,
                                     initial_log=initial_log, updates_per_log=updates_per_log,
                                     accumulation=accumulation,
                                     callbacks=callbacks, soft=soft,
                                     top_k=min(5, train_data.num_classes), progress=progress)
    elif training and initial_log < total_logs:
        fit = model.fit(train_data.dataset, epochs=total_logs, initial_epoch=initial_log,
                        steps_per_epoch=updates_per_log * accumulation, callbacks=callbacks,
                        verbose=1 if progress else 0, shuffle=False)
        history = [dict(zip(fit.history, values)) for values in zip(*fit.history.values())]
    if log.stopped:
        say(f"error: {log.stopped}")
    if train_data.skipped():
        say(f"skipped {train_data.skipped()} corrupt images")
    result = None
    if validation and train_data.num_examples is None:
        say("no validation: synthetic data has no validation set.")
    elif validation and not log.stopped:
        result = evaluate(core, data, case.image_size, class_names=train_data.class_names,
                          batch_size=max(case.micro_batch_size, 32))
        average = run_dir / checkpoints.AVERAGE
        if (average / "model.weights.h5").is_file():
            averaged, _ = checkpoints.load_model(average)
            result["average"] = evaluate(averaged, data, case.image_size,
                                         class_names=train_data.class_names,
                                         batch_size=max(case.micro_batch_size, 32))
        if chief:
            (run_dir / "validation.json").write_text(json.dumps(result, indent=1))
    # A worker other than the chief writes no checkpoint: it reports where its own log got to.
    done_meta = log.reached
    if done_meta is None:  # nothing trained in this call: the newest checkpoint says
        done = checkpoints.latest(run_dir)
        done_meta = checkpoints.read_meta(done) if done else {}
    return TrainResult(str(run_dir), done_meta.get("epoch", 0), done_meta.get("updates", 0),
                       resumed_from, history, result, log.stopped, core)


def _check_same_run(saved: dict, meta: dict, run_dir) -> None:
    keys = ("spec", "image_size", "class_names", "updates_per_epoch", "gradient_accumulation")
    changed = [k for k in keys if json.loads(json.dumps(saved.get(k))) != json.loads(json.dumps(meta[k]))]
    if changed:
        raise ValueError(f"{run_dir} holds a run with different {', '.join(changed)}; resuming it "
                         f"would mix two runs. Use another --checkpoint-dir, or delete that one.")


def evaluate(model, data: str, image_size: int, class_names=None, batch_size: int = 64) -> dict:
    """Top-1, top-5 and loss of ``model`` on the validation split at ``image_size``."""
    from .data import make_dataset

    valid = make_dataset(data, "validation", image_size, batch_size)
    if class_names is not None and list(valid.class_names) != list(class_names):
        raise ValueError(f"{data}: its classes differ from the model's ({len(valid.class_names)} vs "
                         f"{len(class_names)}): validate on the data the model was trained on.")
    if model.input_shape[1] != image_size:
        model = _at_size(model, image_size)
    model.compile(loss=_loss(False), metrics=_metrics(False, valid.num_classes), jit_compile=False)
    values = model.evaluate(valid.dataset, verbose=0, return_dict=True)
    return dict(image_size=image_size, top1=float(values["top1"]), top5=float(values["top5"]),
                loss=float(values["loss"]), images=valid.num_examples)


def _at_size(model, image_size: int):
    """The same weights in a model built for another input size (convolutions do not care)."""
    from .efficientnet import build_model

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
