"""Replicas on this machine or across machines: the ``tf.distribute`` strategy of a run.

* one device: the default strategy;
* several local GPUs: ``MirroredStrategy`` over as many as the case has replicas;
* ``TF_CONFIG`` set: ``MultiWorkerMirroredStrategy``, trained by :mod:`.multiworker`'s
  own loop because Keras 3's ``fit`` cannot run under it.
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
    gpus = tf.config.list_logical_devices("GPU")
    if replicas > 1 and len(gpus) > 1:
        return tf.distribute.MirroredStrategy([g.name for g in gpus[:replicas]])
    return tf.distribute.get_strategy()


def is_multi_worker(strategy) -> bool:
    """Whether ``strategy`` spans several workers (a ``TF_CONFIG`` cluster)."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy) -> bool:
    """Whether this process writes the run's files: always, except workers other than task 0."""
    return not os.environ.get("TF_CONFIG") or strategy.cluster_resolver.task_id == 0
