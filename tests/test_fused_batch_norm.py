"""The fused BatchNorm is Keras's BatchNorm: outputs, gradients and moving statistics equal
keras.layers.BatchNormalization's, in float32 and in mixed float16, in training and inference."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from effnet_lib import build_model
from effnet_lib.common.precision import dtype_policy
from effnet_lib.models.fused_batch_norm import FusedBatchNormalization

from conftest import SMALL


def _pair(shape, rng, **kwargs):
    """Keras's layer and the fused one, with the same (random) weights and moving statistics."""
    layers = keras.layers.BatchNormalization(**kwargs), FusedBatchNormalization(**kwargs)
    weights = None
    for layer in layers:
        layer.build(shape)
        weights = weights or [rng.uniform(0.5, 2.0, w.shape).astype("float32") for w in layer.weights]
        layer.set_weights(weights)
    return layers


def _run(layer, x, training):
    """Outputs, the gradients of a randomly weighted sum of them (input, gamma, beta), and the
    weights after the call."""
    # Random weights: a loss BatchNorm is nearly invariant to (a sum of squares) would leave
    # input gradients that are mostly rounding error.
    weights = np.random.default_rng(7).normal(size=x.shape).astype("float32")
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.cast(y, "float32") * weights)
    grads = tape.gradient(loss, [x, *layer.trainable_weights])
    return (np.asarray(y, "float32"), [np.asarray(g, "float32") for g in grads],
            [np.asarray(w) for w in layer.weights])


@pytest.mark.parametrize("policy, tolerance", [("32.32", 1e-5), ("16.32", 2e-3)])
@pytest.mark.parametrize("shape", [(4, 5, 5, 8), (2, 3, 3, 16), (1, 1, 1, 8)])
@pytest.mark.parametrize("training", [True, False])
def test_fused_batch_norm_equals_keras_batch_norm(shape, training, policy, tolerance):
    rng = np.random.default_rng(sum(shape))
    with dtype_policy(policy):
        keras_bn, fused = _pair(shape, rng, momentum=0.9, epsilon=1e-3)
        assert fused.fuses(tf.zeros(shape, fused.compute_dtype))  # the kernel, not the fallback
        x = rng.normal(2.0, 3.0, shape).astype(keras_bn.compute_dtype)
        expected, got = _run(keras_bn, x, training), _run(fused, x, training)
    for want, have in zip(expected[1], got[1]):  # gradients: relative to their size
        np.testing.assert_allclose(have, want, rtol=tolerance, atol=tolerance * np.abs(want).max())
    np.testing.assert_allclose(got[0], expected[0], rtol=tolerance, atol=tolerance)
    # Moving statistics: Keras's rule with the biased batch variance (the kernel's is unbiased).
    for want, have in zip(expected[2], got[2]):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)
    if training:
        assert not np.allclose(got[2][3], keras.layers.BatchNormalization().moving_variance_initializer(
            (shape[-1],))), "the moving variance did not move"


def test_where_the_kernel_does_not_apply_the_layer_is_keras_s():
    """Inputs the fused kernel does not take (2-D here, or an epsilon below its minimum)
    run Keras's code: still the same function."""
    rng = np.random.default_rng(0)
    for shape, epsilon in (((6, 8), 1e-3), ((2, 3, 3, 8), 1e-6)):
        keras_bn, fused = _pair(shape, rng, epsilon=epsilon)
        assert not fused.fuses(tf.zeros(shape))
        x = rng.normal(size=shape).astype("float32")
        np.testing.assert_allclose(_run(fused, x, True)[0], _run(keras_bn, x, True)[0], atol=1e-5)


def test_bn_models_build_the_fused_layer_and_load_keras_batch_norm_weights():
    model = build_model("B0-G16-BN", image_size=32, **SMALL)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(type(layer) is FusedBatchNormalization for layer in norms)
    assert not any(isinstance(layer, FusedBatchNormalization)
                   for layer in build_model("B0-G16-GN", image_size=32, **SMALL).layers)
