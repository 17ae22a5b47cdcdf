"""Measurements behind the Proxy Norm lesson (``notebooks/03_proxy_norm.ipynb``).

* :func:`batch_dependence`: how much one image's output moves when only its
  batch mates change (BatchNorm in training mode; GN, LN, LN_PN do not move).
* :func:`channel_collapse`: the "power plot" of Labatie et al. (2021), computed
  here: through a deep random network with each norm, the share of the signal's
  power held by the per-channel means over the data. A share near 1 means every
  channel is nearly constant across inputs (channel-wise collapse).
* :func:`microbatch_study`: the same small convnet trained with each norm at several
  micro-batch sizes on the same images with the paper's batch rules, over seeds,
  validation top-1 measured.

The convnet (:func:`small_convnet`) is four convolutions with the kit's own norm
and activation layers (:func:`effnet_lib.models.norms.norm_activation`: the same BN,
GN, LN and Proxy Norm settings as the EfficientNets), small enough that a run costs
seconds on a CPU.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

NORMS = ("BN", "GN", "LN", "LN_PN")


def _spec(norm: str):
    from ..models.spec import EfficientNetSpec

    return EfficientNetSpec.from_name(f"B0-G1-{norm}")


def small_convnet(norm: str, image_size: int = 32, num_classes: int = 10, width: int = 16, seed=None,
                  micro_batch_size: int | None = None):
    """Four 3x3 convolutions (strides 2, 1, 2, 2), each followed by the kit's ``norm`` + swish.

    ``micro_batch_size`` (BN only): BatchNorm over micro-batches of that size inside each
    batch (:class:`.micro_batch_norm.MicroBatchNormalization`).
    """
    import keras
    from keras import layers

    from ..models.builder import CONV_INIT, DENSE_INIT
    from ..models.image_normalization import ImageNormalization
    from ..models.norms import norm_activation
    from .micro_batch_norm import MicroBatchNormalization

    if seed is not None:
        keras.utils.set_random_seed(seed)
    spec = _spec(norm)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = ImageNormalization(name="normalization")(inputs)
    for i, (filters, stride) in enumerate([(width, 2), (2 * width, 1), (2 * width, 2), (4 * width, 2)]):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                          kernel_initializer=CONV_INIT, name=f"conv{i}")(x)
        if norm == "BN" and micro_batch_size:
            x = MicroBatchNormalization(micro_batch_size, momentum=spec.bn_momentum,
                                        epsilon=spec.norm_epsilon, name=f"conv{i}_bn")(x)
            x = layers.Activation(spec.activation, name=f"conv{i}_activation")(x)
        else:
            x = norm_activation(x, spec, f"conv{i}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=DENSE_INIT, name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"convnet_{norm.lower()}")


def load_arrays(source: str, split: str, image_size: int, limit: int | None = None):
    """(uint8 images, int labels, class names) of a split, centre-cropped (the validation
    transform, for both splits: small lessons train without augmentation), in memory."""
    from ..data import make_dataset

    data = make_dataset(source, split, image_size, batch_size=256, training=False, progress=False)
    images, labels = [], []
    for x, y in data.dataset:
        images.append(x.numpy())
        labels.append(y.numpy())
        if limit is not None and sum(len(i) for i in images) >= limit:
            break
    images, labels = np.concatenate(images)[:limit], np.concatenate(labels)[:limit]
    return images, labels, list(data.class_names)


def batch_dependence(images: np.ndarray, norms=NORMS, batch_sizes=(2, 8, 32), trials: int = 8,
                     seed: int = 0) -> pd.DataFrame:
    """How much image 0's output changes with its batch mates, in training mode.

    For each norm and batch size: ``trials`` batches that all hold ``images[0]``
    first and different random other images; the spread (standard deviation over
    the trials) of image 0's logits, divided by the spread of logits across
    different images. 0 means the output does not depend on the batch at all.
    """
    import keras

    rng = np.random.default_rng(seed)
    rows = []
    for norm in norms:
        model = small_convnet(norm, images.shape[1], seed=seed)
        scale = float(np.std(np.asarray(model(images[:64], training=True))))
        for batch in batch_sizes:
            outputs = []
            for _ in range(trials):
                mates = rng.choice(np.arange(1, len(images)), size=batch - 1, replace=False)
                chosen = np.concatenate([images[:1], images[mates]])
                outputs.append(np.asarray(model(chosen, training=True))[0])
            spread = float(np.mean(np.std(np.stack(outputs), axis=0)))
            rows.append(dict(norm=norm, batch_size=batch, relative_spread=spread / scale))
        del model
        keras.backend.clear_session()
    return pd.DataFrame(rows)


def _swish(x):
    return x / (1.0 + np.exp(-x))


def proxy_moments_at_init(epsilon: float = 0.03):
    """Mean, variance of swish over the Gaussian proxy at initialisation (``beta=beta'=gamma'=0``, ``gamma=1``),
    from the kit's :class:`~effnet_lib.models.proxy_norm.ProxyNormActivation`."""
    from ..models.proxy_norm import ProxyNormActivation

    layer = ProxyNormActivation("swish", epsilon=epsilon)
    layer.build((None, 1))
    mean, var = layer.proxy_moments()
    return float(np.asarray(mean)[0]), float(np.asarray(var)[0])


def channel_collapse(norms=("BN", "LN", "LN_PN"), depth: int = 50, width: int = 256,
                     samples: int = 512, groups: int = 4, seed: int = 0) -> pd.DataFrame:
    """Share of the signal's power in its per-channel means, layer by layer, at initialisation.

    A deep random network ``h_l = W_l a_{l-1}``, ``a_l = act(norm(h_l))`` on
    Gaussian inputs: each unit of the MLP is a channel (a conv net's positions
    would only add more samples per channel). Weights are Gaussian with variance
    ``1/width``; the same weights serve every norm. Per layer ``l`` it reports

        share_l = sum_c mean_c(h_l)^2 / sum_c mean(h_l^2)

    with the means over the samples: the part of the power that is the same for
    every input. BN normalises each channel over the batch; GN (``groups``) and
    LN (one group) each sample over its channels; LN_PN is LN followed by Proxy
    Norm's centring and scaling with the proxy's moments at initialisation.
    """
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 1 / np.sqrt(width), (width, width)) for _ in range(depth)]
    inputs = rng.normal(0, 1, (samples, width))
    pn_mean, pn_var = proxy_moments_at_init()
    eps = 1e-3
    rows = []
    for norm in norms:
        a = inputs
        for layer, w in enumerate(weights, start=1):
            h = a @ w
            power = np.mean(h ** 2, axis=0).sum()
            share = float((np.mean(h, axis=0) ** 2).sum() / power)
            rows.append(dict(norm=norm, layer=layer, mean_power_share=share))
            if norm == "BN":
                x = (h - h.mean(0)) / np.sqrt(h.var(0) + eps)
            else:
                g = groups if norm.startswith("GN") else 1
                hg = h.reshape(samples, g, width // g)
                x = ((hg - hg.mean(2, keepdims=True)) / np.sqrt(hg.var(2, keepdims=True) + eps)).reshape(h.shape)
            a = _swish(x)
            if norm.endswith("_PN"):
                a = (a - pn_mean) / np.sqrt(pn_var + 0.03)
    return pd.DataFrame(rows)


def microbatch_study(source: str, image_size: int, norms=NORMS, micro_batch_sizes=(2, 8, 32),
                     seeds=(0, 1, 2), images_seen: int = 16000, global_batch: int = 32,
                     learning_rate_exponent: float = -10, width: int = 16, say=print) -> pd.DataFrame:
    """Train :func:`small_convnet` with each norm at each micro-batch size; validation top-1.

    One cause at a time, as the paper's runs hold it: the *global* batch stays
    ``global_batch`` (the optimiser's batch: micro-batch x accumulation, 768 in the paper),
    so every run sees the same images in a seed's order, takes the same number of updates
    with the same learning rate (the paper's rule, ``2^exponent x global batch``, and
    ``rho = 1 - 2^-14 x global batch``, RMSprop as TensorFlow 1 ran it), and only the batch
    BatchNorm normalises over changes (:class:`.micro_batch_norm.MicroBatchNormalization`:
    the same as accumulating micro-batches). GN, LN and LN_PN normalise each image alone,
    so one run per seed is their result at every micro-batch (section 1 of lesson 03
    measures that independence); the table repeats it and says so (``shared``).

    Top-1 is measured in inference mode on the whole validation split (BN with its
    moving averages). Runs are cached (:func:`effnet_lib.lessons.run_cache.cached_result`).
    """
    from .run_cache import cached_result, data_identity

    train = load_arrays(source, "train", image_size)
    valid = load_arrays(source, "validation", image_size)
    rows = []
    for norm in norms:
        trained = micro_batch_sizes if norm == "BN" else (global_batch,)
        for micro in trained:
            for seed in seeds:
                description = dict(norm=norm, micro=micro, seed=seed, images_seen=images_seen,
                                   global_batch=global_batch, exponent=learning_rate_exponent,
                                   width=width, image_size=image_size, data=data_identity(source))
                row = cached_result("microbatch", description, lambda: _train_convnet(
                    train, valid, norm, micro, seed, images_seen, global_batch,
                    learning_rate_exponent, width), say=say)
                say(f"{norm:6s} micro-batch {micro:3d} seed {seed}: top-1 {row['top1']:.3f} "
                    f"({row['seconds']:.1f} s)")
                shared = micro not in micro_batch_sizes or norm != "BN"
                for shown in (micro_batch_sizes if norm != "BN" else (micro,)):
                    rows.append(dict(row, micro_batch=shown, shared=shared))
    return pd.DataFrame(rows)


def _train_convnet(train, valid, norm, micro, seed, images_seen, global_batch, exponent,
                   width) -> dict:
    import keras
    import tensorflow as tf

    from ..common.optimizer_slots import build_optimizer_slots
    from ..training.recipe import RMSpropOnesStart

    (x_train, y_train, classes), (x_valid, y_valid, _) = train, valid
    start = time.perf_counter()
    model = small_convnet(norm, x_train.shape[1], len(classes), width=width, seed=seed,
                          micro_batch_size=micro if norm == "BN" else None)
    steps = images_seen // global_batch
    model.compile(optimizer=RMSpropOnesStart(learning_rate=2.0 ** exponent * global_batch,
                                             rho=1 - 2.0 ** -14 * global_batch, momentum=0.9,
                                             epsilon=1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="top1")],
                  steps_per_execution=min(32, steps))
    build_optimizer_slots(model)
    data = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
            .shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True).repeat()
            .batch(global_batch, drop_remainder=True).take(steps))
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    result = model.evaluate(x_valid, y_valid, batch_size=100, verbose=0, return_dict=True)
    keras.backend.clear_session()
    return dict(norm=norm, trained_micro_batch=micro, seed=seed, images_seen=steps * global_batch,
                steps=steps, learning_rate=2.0 ** exponent * global_batch,
                top1=float(result["top1"]), correct=int(round(result["top1"] * len(y_valid))),
                images=len(y_valid), seconds=round(time.perf_counter() - start, 2))
