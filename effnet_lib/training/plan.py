"""Planning a run: how a case's global batch lands on this machine, and when the host steps in.

* **Global batch** = micro-batch x gradient accumulation x replicas, whatever the
  hardware: replicas that the machine does not have are folded into gradient
  accumulation (8 replicas on 1 device accumulate 8x longer): :func:`fold_replicas`.
* **Pipeline stages** have no TF/Keras counterpart: the model runs whole on each
  replica and the global batch is kept through accumulation.
* **Device iterations** are Keras's ``steps_per_execution``, set from
  ``logs_per_epoch`` by :mod:`.host_events`; checkpoints fall on log boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .cases import CaseConfig
from .host_events import HostEvents, host_events

SYNTHETIC_MICRO_STEPS_PER_EPOCH = 100  # endless data has no epoch: this many micro-steps


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

    def first_log(self, resumed_epoch: int) -> int:
        """The log to start from after a checkpoint at ``resumed_epoch``."""
        return resumed_epoch * self.logs_per_checkpoint // self.epochs_per_checkpoint

    def epoch_at(self, log_index: int) -> int | None:
        """The epoch a checkpoint at the end of log ``log_index`` (0-based) holds, or None
        when that log ends between checkpoints."""
        if (log_index + 1) % self.logs_per_checkpoint:
            return None
        return (log_index + 1) // self.logs_per_checkpoint * self.epochs_per_checkpoint


def plan_run(case: CaseConfig, layout: Layout, micro_steps_per_epoch: int | None,
             epochs: int | None = None, logs_per_epoch="1",
             max_updates_per_epoch: int | None = None, num_examples: int | None = None,
             data: str = "") -> RunPlan:
    """The run's plan; ``micro_steps_per_epoch`` is None for endless (synthetic) data."""
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
    return RunPlan(layout, epochs, updates_per_epoch,
                   host_events(logs_per_epoch, updates_per_epoch, epochs))
