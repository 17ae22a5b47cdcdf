"""Measurements behind the Proxy Norm lesson (``notebooks/03_proxy_norm.ipynb``).

* :func:`batch_dependence`: how much one image's output moves when only its
  batch mates change (BatchNorm in training mode; GN, LN, LN_PN do not move).
* :func:`channel_collapse`: the "power plot" of Labatie et al. (2021), computed
  here: through a deep random network with each norm, the share of the signal's
  power held by the per-channel means over the data. A share near 1 means every
  channel is nearly constant across inputs (channel-wise collapse).
* :func:`microbatch_comparison`: the same small convnet trained with each norm at
  several micro-batch sizes on the same images, validation top-1 measured.

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


def small_convnet(norm: str, image_size: int = 32, num_classes: int = 10, width: int = 16, seed=None):
    """Four 3x3 convolutions (strides 2, 1, 2, 2), each followed by the kit's ``norm`` + swish."""
    import keras
    from keras import layers

    from ..models.builder import CONV_INIT, DENSE_INIT
    from ..models.image_normalization import ImageNormalization
    from ..models.norms import norm_activation

    if seed is not None:
        keras.utils.set_random_seed(seed)
    spec = _spec(norm)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = ImageNormalization(name="normalization")(inputs)
    for i, (filters, stride) in enumerate([(width, 2), (2 * width, 1), (2 * width, 2), (4 * width, 2)]):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                          kernel_initializer=CONV_INIT, name=f"conv{i}")(x)
        x = norm_activation(x, spec, f"conv{i}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=DENSE_INIT, name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"convnet_{norm.lower()}")


def load_arrays(source: str, split: str, image_size: int, limit: int | None = None):
    """(uint8 images, int labels, class names) of a split, centre-cropped, in memory."""
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


def microbatch_comparison(train: tuple, valid: tuple, norms=NORMS, batch_sizes=(2, 8, 32),
                          images_seen: int = 2048, learning_rate: float = 1e-3, width: int = 16,
                          seed: int = 0, say=print) -> pd.DataFrame:
    """Train :func:`small_convnet` with each norm at each micro-batch size; validation top-1.

    Every run sees the same ``images_seen`` training images (so smaller batches
    take more, smaller steps) with Adam at a fixed learning rate, and is tested
    in inference mode on ``valid``: BN then uses its moving averages, the
    others compute exactly what they computed in training.
    """
    import keras

    (x_train, y_train), (x_valid, y_valid) = train, valid
    classes = int(max(y_train.max(), y_valid.max())) + 1
    rows = []
    for norm in norms:
        for batch in batch_sizes:
            start = time.perf_counter()
            model = small_convnet(norm, x_train.shape[1], classes, width=width, seed=seed)
            model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=[keras.metrics.SparseCategoricalAccuracy(name="top1")])
            # The first images_seen training images (whole batches), repeated if there
            # are fewer: every run sees the same images, as often.
            count = max(batch, min(len(x_train), images_seen) // batch * batch)
            epochs = max(1, round(images_seen / count))
            model.fit(x_train[:count], y_train[:count], batch_size=batch, epochs=epochs,
                      shuffle=True, verbose=0)
            result = model.evaluate(x_valid, y_valid, batch_size=100, verbose=0, return_dict=True)
            seconds = time.perf_counter() - start
            rows.append(dict(norm=norm, batch_size=batch, images_seen=images_seen,
                             top1_measured=float(result["top1"]), seconds=round(seconds, 2)))
            say(f"{norm:6s} batch {batch:3d}: top-1 {result['top1']:.3f} ({seconds:.1f} s)")
            del model
            keras.backend.clear_session()
    return pd.DataFrame(rows)
