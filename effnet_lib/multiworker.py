"""Training across machines (``TF_CONFIG``): a custom loop where Keras's ``fit`` cannot run.

Keras 3's ``fit`` fails under ``tf.distribute.MultiWorkerMirroredStrategy``
(keras-team/keras#20585: it averages a distributed input batch to build the model
and reduces scalar logs with ``strategy.reduce(..., axis=0)``, which collective
ops reject). :func:`fit_across_workers` does for :func:`effnet_lib.train.train`
what ``fit`` does, with the same compiled model, optimiser and callbacks:

* Each replica runs the model on its share of the global micro-batch and takes
  ``model.compute_loss`` (the compiled loss plus L2 terms), which Keras already
  scales by ``1 / replicas`` under a strategy. The TensorFlow optimiser sums the
  gradients over all replicas of all workers (an all-reduce) before the update,
  so the update uses the mean gradient over the global batch, as on one device.
* Gradient accumulation is the optimiser's own (``gradient_accumulation_steps``),
  applied after that all-reduce, so the schedule steps by weight updates and the
  checkpoints hold the same variables as ``fit``'s.
* One ``tf.function`` call runs one log period (``updates_per_log x accumulation``
  micro-steps), as ``steps_per_execution`` does for ``fit``. Loss, top-1 and top-k
  are summed over replicas with ``strategy.reduce`` each micro-step, so every
  worker sees the same logs and takes the same decisions (NaN stop, checkpoints).
* The callbacks get ``on_train_batch_end`` once per execution and ``on_epoch_end``
  once per log, as ``fit`` calls them.
"""

from __future__ import annotations

import functools

import keras


def is_multi_worker(strategy) -> bool:
    """Whether ``strategy`` spans several workers (a ``TF_CONFIG`` cluster)."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def fit_across_workers(model: keras.Model, dataset, strategy, *, total_logs: int, initial_log: int,
                       updates_per_log: int, accumulation: int, callbacks, soft: bool, top_k: int,
                       progress: bool = True) -> list[dict]:
    """Train the compiled ``model`` on ``dataset`` (global micro-batches) for logs
    ``initial_log .. total_logs - 1``; returns one dict of logs per log, as ``fit``'s history.

    The model's optimiser must not accumulate gradients itself: Keras's accumulation
    puts the all-reduce inside a ``cond``, which ``tf.distribute`` rejects across
    workers. ``accumulation`` micro-steps are summed here, in per-replica variables.
    """
    import tensorflow as tf

    optimizer = model.optimizer
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if inner.gradient_accumulation_steps:
        raise ValueError("fit_across_workers accumulates gradients itself: build the optimiser "
                         "without gradient_accumulation_steps.")
    variables = model.trainable_variables
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        if not optimizer.built:  # slots exist before the step is traced (built already on resume)
            optimizer.build(variables)
        sums = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False,
                            synchronization=tf.VariableSynchronization.ON_READ,
                            aggregation=tf.VariableAggregation.SUM)
                for v in variables] if accumulation > 1 else []

    def apply(grads):
        if optimizer is not inner:
            # The loss-scale optimiser skips an update whose gradients are not finite,
            # but it looks before the all-reduce: make every worker see the same verdict,
            # or one would wait for the others' all-reduce forever.
            bad = sum(tf.reduce_sum(tf.cast(~tf.math.is_finite(g), tf.float32)) for g in grads)
            bad = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, bad)
            grads = [tf.where(bad > 0, tf.constant(float("nan"), g.dtype), g) for g in grads]
        optimizer.apply_gradients(zip(grads, variables))  # all-reduced (summed) over replicas

    def micro_step(x, y, part):
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)  # already / replicas
            scaled = optimizer.scale_loss(loss)
        grads = [tf.zeros_like(v) if g is None else g
                 for g, v in zip(tape.gradient(scaled, variables), variables)]
        if part == "only":
            apply(grads)
        elif part == "first":
            for total, g in zip(sums, grads):
                total.assign(g)
        elif part == "middle":
            for total, g in zip(sums, grads):
                total.assign_add(g)
        else:  # the last micro-step: the mean of all of them, as Keras's accumulation
            apply([(total.read_value() + g) / accumulation for total, g in zip(sums, grads)])
        logits = tf.cast(y_pred, tf.float32)
        labels = tf.argmax(y, -1, output_type=tf.int32) if soft else tf.cast(y, tf.int32)
        batch = tf.cast(tf.shape(logits)[0], tf.float32)
        top1 = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
        topk = tf.cast(tf.math.in_top_k(labels, logits, top_k), tf.float32)
        return tf.stack([tf.cast(loss, tf.float32) * replicas * batch, tf.reduce_sum(top1),
                         tf.reduce_sum(topk), batch])

    def step(iterator, part):
        x, y = next(iterator)
        logs = strategy.run(functools.partial(micro_step, part=part), args=(x, y))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, logs, axis=None)

    @tf.function
    def run_log(iterator, updates):
        totals = tf.zeros([4])
        for _ in tf.range(updates):
            if accumulation == 1:
                totals += step(iterator, "only")
            else:
                totals += step(iterator, "first")
                for _ in tf.range(accumulation - 2):
                    totals += step(iterator, "middle")
                totals += step(iterator, "last")
        return totals

    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    updates = tf.constant(updates_per_log, tf.int32)
    model.stop_training = False
    callback_list = keras.callbacks.CallbackList(callbacks, model=model, add_progbar=progress,
                                                 verbose=1 if progress else 0, epochs=total_logs,
                                                 steps=1)
    history = []
    callback_list.on_train_begin()
    for log_index in range(initial_log, total_logs):
        callback_list.on_epoch_begin(log_index)
        callback_list.on_train_batch_begin(0)
        loss_sum, top1, topk, examples = (float(v) for v in run_log(iterator, updates).numpy())
        logs = dict(loss=loss_sum / examples, top1=top1 / examples, top5=topk / examples)
        callback_list.on_train_batch_end(0, logs)
        callback_list.on_epoch_end(log_index, logs)
        history.append(logs)
        if model.stop_training:  # the logs are the same on every worker: all stop together
            break
    callback_list.on_train_end()
    return history
