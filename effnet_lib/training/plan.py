"""Planning a run: how a case's global batch lands on this machine, and when the host steps in.

* **Global batch** = micro-batch x gradient accumulation x replicas, whatever the
  hardware: replicas that the machine does not have are folded into gradient
  accumulation (8 replicas on 1 device accumulate 8x longer): :func:`fold_replicas`.
* **Pipeline stages** have no TF/Keras counterpart: the model runs whole on each
  replica and the global batch is kept through accumulation.
* **Device iterations** are Keras's ``steps_per_execution``, set from
  ``logs_per_epoch`` by :mod:`.host_events`; checkpoints fall on log boundaries:
  at every epoch's end, and within an epoch every ``checkpoint_every`` weight
  updates (logs are made at least that frequent so that one falls there).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import NamedTuple

from .cases import CaseConfig
from .host_events import HostEvents, host_events

SYNTHETIC_MICRO_STEPS_PER_EPOCH = 100  # endless data has no epoch: this many micro-steps
# Epochs longer than this many weight updates get checkpoints within the epoch by default,
# about every CHECKPOINT_TARGET_UPDATES (the paper's ImageNet epochs: 1,668 -> every 556).
LONG_EPOCH_UPDATES = 1000
CHECKPOINT_TARGET_UPDATES = 500


class Layout(NamedTuple):
    """The case's batch layout on this machine."""

    replicas: int  # tf.distribute replicas used
    accumulation: int  # micro-steps per weight update, folded replicas included
    notes: list[str]  # what was mapped, for the user


def fold_replicas(case: CaseConfig, available: int) -> Layout:
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
    return Layout(used, accumulation, notes)


@dataclass(frozen=True)
class RunPlan:
    """Weight updates, logs and checkpoints of a whole run."""

    layout: Layout
    epochs: int
    updates_per_epoch: int
    events: HostEvents
    checkpoint_every: int | None = None  # weight updates between checkpoints within an epoch

    @property
    def updates_per_log(self) -> int:
        return self.events.steps_per_execution

    @property
    def micro_steps_per_log(self) -> int:
        return self.updates_per_log * self.layout.accumulation

    @property
    def total_logs(self) -> int:
        return self.events.executions

    @property
    def epochs_per_checkpoint(self) -> int:
        return max(1, self.updates_per_log // self.updates_per_epoch)

    @property
    def logs_per_checkpoint(self) -> int:
        return max(1, self.updates_per_epoch // self.updates_per_log)

    def checkpoint_at(self, log_index: int) -> bool:
        """Whether a checkpoint falls at the end of log ``log_index`` (0-based): at an epoch's
        end, or every :attr:`checkpoint_every` updates within an epoch."""
        if self.epoch_at(log_index) is not None:
            return True
        within = (log_index + 1) * self.updates_per_log % self.updates_per_epoch
        return bool(self.checkpoint_every and within and within % self.checkpoint_every == 0)

    def log_after(self, updates: int) -> int:
        """The log a run resumed after ``updates`` weight updates starts from; an error when
        ``updates`` does not end a log of this plan (the run was planned otherwise)."""
        if updates % self.updates_per_log:
            raise ValueError(
                f"the checkpoint holds {updates} weight updates, which does not end a log of this "
                f"run (every {self.updates_per_log} updates): resume with the --logs-per-epoch "
                f"and --checkpoint-every-updates the run was started with.")
        return updates // self.updates_per_log

    def epoch_at(self, log_index: int) -> int | None:
        """The epoch a checkpoint at the end of log ``log_index`` (0-based) holds, or None
        when that log ends between checkpoints."""
        if (log_index + 1) % self.logs_per_checkpoint:
            return None
        return (log_index + 1) // self.logs_per_checkpoint * self.epochs_per_checkpoint


def plan_run(case: CaseConfig, layout: Layout, micro_steps_per_epoch: int | None,
             epochs: int | None = None, logs_per_epoch="1",
             max_updates_per_epoch: int | None = None, num_examples: int | None = None,
             data: str = "", checkpoint_every_updates: int | None = None) -> RunPlan:
    """The run's plan; ``micro_steps_per_epoch`` is None for endless (synthetic) data;
    ``checkpoint_every_updates``: see :func:`checkpoint_interval`."""
    epochs = int(epochs if epochs is not None else round(case.epochs))
    if epochs < 1:
        raise ValueError(f"epochs={epochs!r}: it must be >= 1.")
    micro_steps = micro_steps_per_epoch or SYNTHETIC_MICRO_STEPS_PER_EPOCH
    updates_per_epoch = micro_steps // layout.accumulation
    if max_updates_per_epoch:
        updates_per_epoch = min(updates_per_epoch, max_updates_per_epoch)
    if updates_per_epoch < 1:
        raise ValueError(f"{data} has {num_examples} training images, fewer than one global batch "
                         f"({case.micro_batch_size} x {layout.accumulation} x {layout.replicas}); "
                         f"lower --batch-size or --gradient-accumulation-count.")
    every = checkpoint_interval(updates_per_epoch, checkpoint_every_updates)
    events = host_events(logs_per_epoch, updates_per_epoch, epochs)
    if every and every % events.steps_per_execution:
        # A checkpoint can only be written when control is back on the host: log more often.
        finer = host_events(updates_per_epoch // math.gcd(every, updates_per_epoch),
                            updates_per_epoch, epochs)
        events = dataclasses.replace(finer, warnings=events.warnings + (
            f"checkpoints every {every} weight updates: logging every "
            f"{finer.steps_per_execution} updates (not {events.steps_per_execution}) so that "
            f"each checkpoint falls at the end of a log.",))
    return RunPlan(layout, epochs, updates_per_epoch, events, every)


def checkpoint_interval(updates_per_epoch: int, requested: int | None) -> int | None:
    """Weight updates between checkpoints within an epoch, or None for epoch ends only.

    ``requested`` (``--checkpoint-every-updates``): that many; 0 turns them off. None, the
    default: for epochs over :data:`LONG_EPOCH_UPDATES` updates, the divisor of the epoch's
    updates nearest :data:`CHECKPOINT_TARGET_UPDATES` (so they split the epoch evenly),
    otherwise epoch ends only."""
    if requested is None:
        if updates_per_epoch <= LONG_EPOCH_UPDATES:
            return None
        divisors = [d for d in range(1, updates_per_epoch) if updates_per_epoch % d == 0]
        return min(divisors, key=lambda d: (abs(d - CHECKPOINT_TARGET_UPDATES), d))
    if not (isinstance(requested, int) and requested >= 0):
        raise ValueError(f"checkpoint_every_updates={requested!r}: it must be a whole number of "
                         f"weight updates >= 0 (0: at epoch ends only).")
    return requested if 0 < requested < updates_per_epoch else None
