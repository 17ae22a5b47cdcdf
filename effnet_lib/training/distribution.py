"""Replicas on this machine or across machines: the ``tf.distribute`` strategy of a run.

* one device: the default strategy;
* several local GPUs (or, without GPUs, several logical CPU devices a user configured):
  ``MirroredStrategy`` over as many as the case has replicas;
* ``TF_CONFIG`` set: ``MultiWorkerMirroredStrategy``.

Several replicas, on one machine or across machines, train with :mod:`.multiworker`'s own
loop (:func:`needs_own_loop`).
"""

from __future__ import annotations

import os


def strategy_for(replicas: int):
    """A ``tf.distribute`` strategy with as many replicas as the machine gives, up to ``replicas``.

    Create it before TensorFlow runs anything else: a multi-worker strategy must be
    the first thing to configure the runtime.
    """
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if replicas > 1:
        # Several local GPUs; without GPUs, CPU devices a user split the processor into
        # (tf.config.set_logical_device_configuration): the same code path, testable anywhere.
        devices = (tf.config.list_logical_devices("GPU")
                   or tf.config.list_logical_devices("CPU"))
        if len(devices) > 1:
            return tf.distribute.MirroredStrategy([d.name for d in devices[:replicas]])
    return tf.distribute.get_strategy()


def is_multi_worker(strategy) -> bool:
    """Whether ``strategy`` spans several workers (a ``TF_CONFIG`` cluster)."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def needs_own_loop(strategy) -> bool:
    """Whether the kit's replica loop (:mod:`.multiworker`) trains instead of Keras's ``fit``:
    across workers, where ``fit`` cannot run, and for several replicas on one machine, where
    Keras's gradient accumulation puts the all-reduce inside a ``cond`` that ``tf.distribute``
    rejects ("merge_call called while defining a new graph") at the first step."""
    return is_multi_worker(strategy) or strategy.num_replicas_in_sync > 1


def is_chief(strategy) -> bool:
    """Whether this process writes the run's files: always, except workers other than task 0."""
    return not os.environ.get("TF_CONFIG") or strategy.cluster_resolver.task_id == 0
