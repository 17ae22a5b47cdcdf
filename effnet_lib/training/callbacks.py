"""The training run's callbacks, one job each.

* :class:`NanGuard`: stop at the first non-finite loss and say where the last good
  checkpoint is;
* :class:`MetricsLog`: one JSON line per log (weight updates, time, learning rate,
  metrics, skipped images);
* :class:`EpochValidation`: at each checkpoint boundary, top-1/top-5 of the current
  weights on the validation split, into the logs;
* :class:`CheckpointWithAverage`: at each checkpoint boundary, update the
  exponential weight average (at epoch ends) and write the checkpoint and the
  average, atomically.

Keras calls ``on_epoch_end`` once per *log* (``fit``'s epochs are the run's logs,
see :mod:`.plan`); the callbacks translate back to epochs where it matters.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import keras
import numpy as np

from . import checkpoints


class NanGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss; ``stopped`` says why."""

    def __init__(self, run_dir: Path):
        super().__init__()
        self.run_dir = run_dir
        self.stopped: str | None = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            update = int(self.model.optimizer.iterations.numpy())
            self.stopped = (f"the loss became {float(loss)} at weight update {update}; training "
                            f"stopped. The last good checkpoint is {checkpoints.latest(self.run_dir)}. "
                            f"Lower the learning rate (--base-learning-rate-exponent) or use "
                            f"precision 32.32 to find the cause.")
            self.model.stop_training = True


class EpochValidation(keras.callbacks.Callback):
    """Validates at checkpoint boundaries; ``val_top1``, ``val_top5``, ``val_loss`` join the logs
    (placed before :class:`MetricsLog`, which then records them)."""

    def __init__(self, validate, epoch_at, guard: NanGuard):
        super().__init__()
        self.validate, self.epoch_at, self.guard = validate, epoch_at, guard

    def on_epoch_end(self, log_index, logs=None):
        if logs is None or self.guard.stopped or self.epoch_at(log_index) is None:
            return
        result = self.validate()
        logs.update(val_top1=result["top1"], val_top5=result["top5"], val_loss=result["loss"])


class MetricsLog(keras.callbacks.Callback):
    """Appends one record per log to ``metrics.jsonl`` (when ``write``)."""

    def __init__(self, run_dir: Path, guard: NanGuard, write: bool, say, data=None):
        super().__init__()
        self.path = Path(run_dir) / "metrics.jsonl"
        self.guard, self.write, self.say = guard, write, say
        self.data = data  # to report skipped corrupt images as they are counted
        self.started = time.perf_counter()

    def on_epoch_end(self, log_index, logs=None):
        if self.guard.stopped:
            return
        optimizer = self.model.optimizer
        record = dict(log=log_index + 1, updates=int(optimizer.iterations.numpy()),
                      seconds=time.perf_counter() - self.started,
                      learning_rate=float(keras.ops.convert_to_numpy(optimizer.learning_rate)),
                      **{k: float(v) for k, v in (logs or {}).items()})
        if self.data is not None and self.data.skipped():
            record["skipped_corrupt_images"] = self.data.skipped()
            self.say(f"skipped {self.data.skipped()} corrupt images so far")
        if self.write:
            with open(self.path, "a") as out:
                out.write(json.dumps(record) + "\n")


class CheckpointWithAverage(keras.callbacks.Callback):
    """Checkpoints and the 0.97 exponential weight average, at checkpoint boundaries.

    ``plan`` (a :class:`~.plan.RunPlan`) says where they fall: ``epoch_at(log)`` gives the
    epoch a log closes (the average and ``epoch-NNNN/``), ``checkpoint_at(log)`` adds the
    checkpoints within an epoch (``update-NNNNNNNN/``, the newest ``keep_within_epoch``
    kept). A stop request (:mod:`.stopping`) writes one wherever the run stops.
    ``saved_model`` is what checkpoints hold when it is not the model being trained (a
    synthetic-input wrapper trains, the plain model is saved). ``reached`` holds the epoch
    and updates of the last boundary, written or not; ``failed`` says why a checkpoint could
    not be written (the run stops there; the previous checkpoint is intact).
    """

    def __init__(self, run_dir: Path, meta: dict, plan, average_decay: float,
                 guard: NanGuard, write: bool, saved_model=None, keep: int = 2,
                 keep_within_epoch: int = 2, stop=None):
        super().__init__()
        if not (isinstance(keep_within_epoch, int) and keep_within_epoch >= 1):
            raise ValueError(f"keep_checkpoints={keep_within_epoch!r}: keep at least 1.")
        self.run_dir, self.meta, self.plan = Path(run_dir), meta, plan
        self.average_decay, self.guard, self.write = average_decay, guard, write
        self.saved_model, self.keep, self.keep_within_epoch = saved_model, keep, keep_within_epoch
        self.stop = stop
        self.average = None
        self.reached = None
        self.failed: str | None = None
        self.last_written: Path | None = None

    @property
    def saved(self):
        return self.saved_model or self.model

    def resume_average(self, model) -> None:
        """Continue the average held in the run folder (``model`` holds its weights)."""
        self.average = [np.array(w) for w in model.get_weights()]

    def on_epoch_end(self, log_index, logs=None):
        epoch = self.plan.epoch_at(log_index)
        stopping = bool(self.stop is not None and self.stop.reason)
        if self.guard.stopped or not (self.plan.checkpoint_at(log_index) or stopping):
            return
        updates = int(self.model.optimizer.iterations.numpy())
        self.reached = dict(epoch=epoch if epoch is not None else updates // self.plan.updates_per_epoch,
                            updates=updates)
        if epoch is not None:
            self._update_average()
        if not self.write:
            return
        meta = dict(self.meta, **self.reached, logs=log_index + 1,
                    metrics={k: float(v) for k, v in (logs or {}).items()})
        folder = (checkpoints.epoch_folder(self.run_dir, epoch) if epoch is not None
                  else checkpoints.update_folder(self.run_dir, updates))
        try:
            self.last_written = checkpoints.write(folder, self.saved, meta)
            if epoch is not None:
                self._write_average(meta)
        except OSError as error:
            previous = checkpoints.latest(self.run_dir)
            self.failed = (f"could not write the checkpoint {folder} ({error.strerror or error}); "
                           f"training stopped. The newest intact checkpoint is {previous}. Free "
                           f"space (or fix the folder) and run the same command to resume.")
            self.model.stop_training = True
            return
        checkpoints.prune(self.run_dir, keep=self.keep, keep_within_epoch=self.keep_within_epoch)

    def _update_average(self):
        weights = [np.array(w) for w in self.saved.get_weights()]
        if self.average is None:
            self.average = weights
        else:
            d = self.average_decay
            self.average = [d * a + (1 - d) * w for a, w in zip(self.average, weights)]

    def _write_average(self, meta):
        current = self.saved.get_weights()
        self.saved.set_weights(self.average)
        try:
            checkpoints.write(self.run_dir / checkpoints.AVERAGE, self.saved,
                              dict(meta, average_decay=self.average_decay))
        finally:
            self.saved.set_weights(current)
