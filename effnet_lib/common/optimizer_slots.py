"""Create a compiled model's optimizer variables before its first training step."""

from __future__ import annotations


def build_optimizer_slots(model) -> None:
    """Build ``model``'s optimizer (its slots, step counter, accumulators) now, eagerly.

    Without a distribution strategy, Keras on TensorFlow leaves this to the first traced
    training step, and a ``tf.function`` that creates variables is traced twice (once to
    create them, once more without). Building first skips that second trace; the step's
    graph and results are the same, since Keras makes this very call itself when a strategy
    is set. Measured on 2 CPU cores (2026-12-07): the first step of B0 at 224 px, batch 8,
    42 s without, 23 s with (1 s of it the build).
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
