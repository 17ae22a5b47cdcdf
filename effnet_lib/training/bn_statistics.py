"""Re-estimate BatchNorm statistics at a new resolution (FixRes's cheapest fix).

A BN model keeps running averages of each channel's mean and variance, seen at
the *training* resolution with training crops. At a higher test resolution the
activations' statistics shift (objects look smaller, borders weigh less), and the
stored averages no longer centre them. Recomputing the averages of the last norms
on images at the test size, with the validation preprocessing, removes that shift
without training a single weight.

Models with GroupNorm, LayerNorm or Proxy Norm keep no such averages (each image
is normalised with its own statistics), so there is nothing to re-estimate.
"""

from __future__ import annotations

import keras
import numpy as np


def batchnorm_layers(model: keras.Model, select=None) -> list:
    """The model's BatchNormalization layers, in order; ``select(name)`` filters them."""
    found = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    return [layer for layer in found if select is None or select(layer.name)]


def reestimate(model: keras.Model, images, layers, max_batches: int | None = None) -> dict:
    """Set each layer's moving mean and variance to the exact statistics of its inputs.

    ``images``: an iterable of image batches (or ``(images, labels)`` batches) at the
    new size. Layers are done one after another in model order, so a later layer
    sees inputs normalised with the earlier layers' new statistics. Returns, per
    layer, the largest change of its moving mean (in units of the new std).
    """
    if not layers:
        raise ValueError("no BatchNormalization layer to re-estimate: GroupNorm, LayerNorm and "
                         "Proxy Norm models keep no batch statistics (nothing depends on the "
                         "resolution there), and a BN model's layers must match the filter.")
    batches = []
    for batch in images:
        batches.append(batch[0] if isinstance(batch, (tuple, list)) else batch)
        if max_batches and len(batches) >= max_batches:
            break
    if not batches:
        raise ValueError("no images to re-estimate the statistics on.")
    shifts = {}
    for layer in layers:
        probe = keras.Model(model.inputs, layer.input)
        total, total_sq, count = 0.0, 0.0, 0
        for batch in batches:
            x = np.asarray(probe(batch, training=False), dtype=np.float64)
            axes = tuple(range(x.ndim - 1))  # all but channels
            total = total + x.sum(axis=axes)
            total_sq = total_sq + np.square(x).sum(axis=axes)
            count += int(np.prod([x.shape[a] for a in axes]))
        mean = total / count
        var = np.maximum(total_sq / count - np.square(mean), 0.0)
        old = np.asarray(layer.moving_mean)
        layer.moving_mean.assign(mean.astype("float32"))
        layer.moving_variance.assign(var.astype("float32"))
        shifts[layer.name] = float(np.max(np.abs(old - mean) / np.sqrt(var + layer.epsilon)))
    return shifts
