"""Start from ``keras.applications`` weights (e.g. ImageNet-pretrained ones).

A G1-BN model of this kit is the same network as ``keras.applications.EfficientNetBn``
with the same layer names, so weights copy layer by layer. The two differ only in
input normalisation, which is folded into this kit's ``ImageNormalization`` layer.
"""

from __future__ import annotations

import keras
import numpy as np

from .image_normalization import ImageNormalization


def transfer_keras_applications_weights(source: keras.Model, target: keras.Model) -> keras.Model:
    """Copy the weights of a ``keras.applications`` EfficientNet into a matching G1-BN model.

    Every weighted layer of ``target`` must exist in ``source`` under the same name
    with the same weight shapes, and every weighted layer of ``source`` must be used;
    otherwise nothing is copied and the error lists the mismatches. Returns ``target``.
    """
    mean, scale = _input_affine(source)
    plan, problems = [], []
    used = set()
    for layer in target.layers:
        if not layer.weights or isinstance(layer, ImageNormalization):
            continue
        try:
            src = source.get_layer(layer.name)
        except ValueError:
            problems.append(f"{layer.name}: not in the source model")
            continue
        src_shapes = [tuple(w.shape) for w in src.weights]
        dst_shapes = [tuple(w.shape) for w in layer.weights]
        if src_shapes != dst_shapes:
            problems.append(f"{layer.name}: source shapes {src_shapes} != target shapes {dst_shapes}")
            continue
        used.add(layer.name)
        plan.append((layer, src))
    unused = [l.name for l in source.layers if l.weights and l.name not in used
              and not isinstance(l, (keras.layers.Normalization, keras.layers.Rescaling))]
    problems += [f"{name}: in the source model but not in the target" for name in unused]
    if problems:
        shown = "\n  ".join(problems[:12]) + ("\n  ..." if len(problems) > 12 else "")
        raise ValueError(f"Cannot transfer weights from {source.name!r} to {target.name!r}: the "
                         f"target must be the same size with G1 (depthwise) and BN "
                         f"(e.g. build_model('B0-G1-BN')).\n  {shown}")
    for layer, src in plan:
        layer.set_weights(src.get_weights())
    norm = next(l for l in target.layers if isinstance(l, ImageNormalization))
    norm.set_weights([mean, scale])
    return target


def _input_affine(source: keras.Model) -> tuple[np.ndarray, np.ndarray]:
    """The source's preprocessing as ``(x - mean) * scale`` per channel.

    ``keras.applications`` EfficientNets rescale by 1/255, apply a Normalization
    layer (and, with ImageNet weights, one more Rescaling); all are per-channel
    affine maps, composed here as ``x * a + b``.
    """
    a, b = np.ones(3), np.zeros(3)
    for layer in source.layers:
        if layer.name.startswith("stem_conv"):
            break
        if isinstance(layer, keras.layers.Rescaling):
            s, o = np.asarray(layer.scale, float), np.asarray(layer.offset, float)
            a, b = a * s, b * s + o
        elif isinstance(layer, keras.layers.Normalization):
            m = np.asarray(keras.ops.convert_to_numpy(layer.mean), float).reshape(-1)
            v = np.asarray(keras.ops.convert_to_numpy(layer.variance), float).reshape(-1)
            d = np.maximum(np.sqrt(v), keras.backend.epsilon())
            a, b = a / d, (b - m) / d
        elif layer.weights:
            raise ValueError(f"Unexpected layer {layer.name!r} ({type(layer).__name__}) before "
                             f"stem_conv in {source.name!r}: is it a keras.applications EfficientNet?")
    a, b = np.broadcast_to(a, 3), np.broadcast_to(b, 3)
    return (-b / a).astype("float32"), a.astype("float32")
