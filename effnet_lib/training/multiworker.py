"""Training on several replicas (local devices, or machines with ``TF_CONFIG``): a custom
loop where Keras's ``fit`` cannot run.

Keras 3's ``fit`` fails under ``tf.distribute.MultiWorkerMirroredStrategy``
(keras-team/keras#20585: it averages a distributed input batch to build the model
and reduces scalar logs with ``strategy.reduce(..., axis=0)``, which collective
ops reject), and under ``MirroredStrategy`` as soon as the optimiser accumulates
gradients (its all-reduce sits inside a ``cond``: "merge_call called while defining a
new graph"), which every paper case folded onto fewer devices does.
:func:`fit_across_replicas` does for :func:`effnet_lib.training.train.train` what ``fit``
does, with the same compiled model, optimiser and callbacks:

* Each replica runs the model on its share of the global micro-batch and takes
  ``model.compute_loss`` (the compiled loss plus L2 terms), which Keras already
  scales by ``1 / replicas`` under a strategy. The TensorFlow optimiser sums the
  gradients over all replicas of all workers (an all-reduce) before the update,
  so the update uses the mean gradient over the global batch, as on one device.
* Gradient accumulation is the loop's own: ``accumulation`` micro-steps are summed
  in per-replica variables and their mean is applied in one optimiser update, so the
  schedule steps by weight updates, as with ``fit``.
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

from ..common.optimizer_slots import build_optimizer_slots


class WorkerLoop:
    """One log period of training (``updates x accumulation`` micro-steps) as one call.

    The model's optimiser must not accumulate gradients itself: Keras's accumulation
    puts the all-reduce inside a ``cond``, which ``tf.distribute`` rejects. ``accumulation`` micro-steps are summed here, in per-replica variables.
    """

    def __init__(self, model: keras.Model, strategy, accumulation: int, soft: bool, top_k: int):
        import tensorflow as tf

        self.model, self.strategy, self.accumulation = model, strategy, accumulation
        self.soft, self.top_k = soft, top_k
        self.optimizer = model.optimizer
        self.inner = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        if self.inner.gradient_accumulation_steps:
            raise ValueError("fit_across_replicas accumulates gradients itself: build the "
                             "optimiser without gradient_accumulation_steps.")
        self.variables = model.trainable_variables
        self.replicas = strategy.num_replicas_in_sync
        with strategy.scope():
            build_optimizer_slots(model)  # slots exist before the step is traced
            self.sums = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False,
                                     synchronization=tf.VariableSynchronization.ON_READ,
                                     aggregation=tf.VariableAggregation.SUM)
                         for v in self.variables] if accumulation > 1 else []
        self.run_log = tf.function(self._run_log)

    def apply(self, grads):
        import tensorflow as tf

        if self.optimizer is not self.inner:
            # The loss-scale optimiser skips an update whose gradients are not finite,
            # but it looks before the all-reduce: make every worker see the same verdict,
            # or one would wait for the others' all-reduce forever.
            bad = sum(tf.reduce_sum(tf.cast(~tf.math.is_finite(g), tf.float32)) for g in grads)
            bad = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, bad)
            grads = [tf.where(bad > 0, tf.constant(float("nan"), g.dtype), g) for g in grads]
        self.optimizer.apply_gradients(zip(grads, self.variables))  # all-reduced over replicas

    def micro_step(self, x, y, part):
        import tensorflow as tf

        model, variables = self.model, self.variables
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)  # already / replicas
            scaled = self.optimizer.scale_loss(loss)
        grads = [tf.zeros_like(v) if g is None else g
                 for g, v in zip(tape.gradient(scaled, variables), variables)]
        if part == "only":
            self.apply(grads)
        elif part == "accumulate":
            for total, g in zip(self.sums, grads):
                total.assign_add(g)
        else:  # the last micro-step: the mean of all of them, as Keras's accumulation
            self.apply([(total.read_value() + g) / self.accumulation
                        for total, g in zip(self.sums, grads)])
            for total in self.sums:  # zero again for the next update's first micro-step
                total.assign(tf.zeros_like(total))
        return self.logs(y, y_pred, loss)

    def logs(self, y, y_pred, loss):
        """Sums of loss, top-1 hits, top-k hits and examples of one micro-step."""
        import tensorflow as tf

        logits = tf.cast(y_pred, tf.float32)
        labels = tf.argmax(y, -1, output_type=tf.int32) if self.soft else tf.cast(y, tf.int32)
        batch = tf.cast(tf.shape(logits)[0], tf.float32)
        top1 = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
        topk = tf.cast(tf.math.in_top_k(labels, logits, self.top_k), tf.float32)
        return tf.stack([tf.cast(loss, tf.float32) * self.replicas * batch, tf.reduce_sum(top1),
                         tf.reduce_sum(topk), batch])

    def step(self, iterator, part):
        import tensorflow as tf

        x, y = next(iterator)
        logs = self.strategy.run(functools.partial(self.micro_step, part=part), args=(x, y))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, logs, axis=None)

    def _run_log(self, iterator, updates):
        import tensorflow as tf

        totals = tf.zeros([4])
        for _ in tf.range(updates):
            if self.accumulation == 1:
                totals += self.step(iterator, "only")
            else:
                # Two kinds of micro-step, each traced once per replica: a third kind for the
                # first micro-step (assigning rather than adding) cost a third more tracing,
                # also at accumulation 2, where the loop of middle steps ran no time.
                for _ in tf.range(self.accumulation - 1):
                    totals += self.step(iterator, "accumulate")
                totals += self.step(iterator, "last")
        return totals


def fit_across_replicas(model: keras.Model, dataset, strategy, *, total_logs: int, initial_log: int,
                       updates_per_log: int, accumulation: int, callbacks, soft: bool, top_k: int,
                       progress: bool = True) -> list[dict]:
    """Train the compiled ``model`` on ``dataset`` (global micro-batches) for logs
    ``initial_log .. total_logs - 1``; returns one dict of logs per log, as ``fit``'s history."""
    import tensorflow as tf

    loop = WorkerLoop(model, strategy, accumulation, soft, top_k)
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
        loss_sum, top1, topk, examples = (float(v) for v in loop.run_log(iterator, updates).numpy())
        logs = dict(loss=loss_sum / examples, top1=top1 / examples, top5=topk / examples)
        callback_list.on_train_batch_end(0, logs)
        callback_list.on_epoch_end(log_index, logs)
        history.append(logs)
        if model.stop_training:  # the logs are the same on every worker: all stop together
            break
    callback_list.on_train_end()
    return history
