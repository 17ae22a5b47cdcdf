import numpy as np
import pytest
import tensorflow as tf

from effnet_lib.models.proxy_norm import ProxyNormActivation, gaussian_quantiles


def swish(x):
    return x / (1.0 + np.exp(-x))


def test_quantiles_are_the_standard_normal_ones():
    q = gaussian_quantiles(200)
    assert q.shape == (200,) and q[0] == pytest.approx(-2.8070, abs=1e-3)
    assert q.mean() == pytest.approx(0, abs=1e-6) and np.all(np.diff(q) > 0)


def test_matches_the_formula_written_independently(rng):
    channels = 6
    layer = ProxyNormActivation("swish", epsilon=0.03)
    layer.build((None, 4, 4, channels))
    beta, gamma = rng.normal(0, 1, channels), rng.uniform(0.3, 2.0, channels)
    beta_p, gamma_p = rng.normal(0, 0.3, channels), rng.normal(0, 0.3, channels)
    layer.set_weights([w.astype("float32") for w in (beta, gamma, beta_p, gamma_p)])
    x = rng.normal(0, 1, (2, 4, 4, channels)).astype("float32")

    q = np.array([__import__("statistics").NormalDist().inv_cdf((i + 0.5) / 200) for i in range(200)])
    proxy = swish(gamma * ((1 + gamma_p) * q[:, None] + beta_p) + beta)
    expected = (swish(gamma * x + beta) - proxy.mean(0)) / np.sqrt(proxy.var(0) + 0.03)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-4, atol=1e-5)


def test_normalises_standard_normal_inputs_per_channel(rng):
    """With beta' = gamma' = 0, N(0, 1) inputs give mean ~0 and variance ~var/(var + eps)."""
    channels = 8
    layer = ProxyNormActivation("swish", epsilon=0.03)
    layer.build((None, channels))
    beta, gamma = rng.normal(0, 1, channels), rng.uniform(0.3, 2.0, channels)
    zeros = np.zeros(channels)
    layer.set_weights([w.astype("float32") for w in (beta, gamma, zeros, zeros)])
    x = rng.normal(0, 1, (400_000, channels)).astype("float32")
    y = np.asarray(layer(x))
    _, proxy_var = (np.asarray(m) for m in layer.proxy_moments())
    np.testing.assert_allclose(y.mean(0), 0, atol=0.01)
    # The 200 quantiles stop at +-2.8 sigma, so for large gamma the proxy variance is a
    # few percent short of the true one: hence 4%, not sampling noise (~0.3% here).
    np.testing.assert_allclose(y.var(0), proxy_var / (proxy_var + 0.03), rtol=0.04)
    # The check can fail: the same inputs shifted by 1 are no longer normalised.
    assert np.abs(np.asarray(layer(x + 1.0)).mean(0)).min() > 0.1


def test_gradients_reach_all_four_parameters(rng):
    layer = ProxyNormActivation("swish")
    x = tf.constant(rng.normal(0, 1, (4, 3, 3, 5)).astype("float32"))
    layer.build(x.shape)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) * tf.constant(rng.normal(0, 1, (4, 3, 3, 5)), tf.float32))
    grads = tape.gradient(loss, [layer.beta.value, layer.gamma.value, layer.proxy_beta.value,
                                 layer.proxy_gamma.value])
    names = ["beta", "gamma", "proxy_beta", "proxy_gamma"]
    for name, grad in zip(names, grads):
        assert grad is not None and np.abs(grad.numpy()).sum() > 0, name


def test_rejects_bad_settings():
    with pytest.raises(ValueError, match="accepted: swish, relu"):
        ProxyNormActivation("gelu")
    with pytest.raises(ValueError, match="epsilon"):
        ProxyNormActivation(epsilon=0)
