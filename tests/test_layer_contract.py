"""One contract for every custom Keras object of the kit, in the spirit of Keras's own layer tests.

Each custom layer must: survive a ``get_config``/``from_config`` round trip; save
and load inside a model (``.keras`` file, Keras's safe mode, no custom objects
passed); give the shape and dtype it declares under ``mixed_float16``; hold the
weights it should; and take one gradient step. The learning-rate schedules and
the optimiser pass the same round trips and a step.
"""

import keras
import numpy as np
import pytest

from effnet_lib.common.precision import dtype_policy
from effnet_lib.data.synthetic import SyntheticImages
from effnet_lib.lessons.micro_batch_norm import MicroBatchNormalization
from effnet_lib.models.fused_batch_norm import FusedBatchNormalization
from effnet_lib.models.grouped_conv import Conv2D as SplitConv2D
from effnet_lib.models.image_normalization import ImageNormalization
from effnet_lib.models.inference_rewrite import FrozenProxyNormActivation, PassThrough
from effnet_lib.models.proxy_norm import ProxyNormActivation
from effnet_lib.training.recipe import Cosine, RMSpropOnesStart, WarmupExponentialDecay

C = 8  # channels of the test inputs


def _images(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


# name: (make the layer, input shape without batch, input dtype, (trainable, non-trainable)
#        weight elements, dtype of the output under mixed_float16)
LAYERS = {
    "ProxyNormActivation": (lambda: ProxyNormActivation("swish", epsilon=0.03), (5, 5, C),
                            "float32", (4 * C, 0), "float16"),
    "ImageNormalization": (lambda: ImageNormalization(scale=(0.5, 0.5, 0.5)), (6, 6, 3), "float32",
                           (0, 6), "float16"),
    "SplitConv2D": (lambda: SplitConv2D(C, 3, groups=2, padding="same", use_bias=False), (6, 6, C),
                    "float32", (3 * 3 * (C // 2) * C, 0), "float16"),
    "SyntheticImages": (lambda: SyntheticImages(12, seed=0), (), "int32", (0, 0), "float32"),
    "MicroBatchNormalization": (lambda: MicroBatchNormalization(2), (5, 5, C), "float32",
                                (2 * C, 2 * C), "float16"),
    "FusedBatchNormalization": (lambda: FusedBatchNormalization(momentum=0.9), (5, 5, C),
                                "float32", (2 * C, 2 * C), "float16"),
    # The inference rewrite's layers: fixed numbers, nothing to train.
    "FrozenProxyNormActivation": (lambda: FrozenProxyNormActivation("swish"), (5, 5, C), "float32",
                                  (0, 4 * C), "float16"),
    "PassThrough": (lambda: PassThrough(), (5, 5, C), "float32", (0, 0), "float16"),
}


def _inputs(name, batch=4):
    _, shape, dtype, _, _ = LAYERS[name]
    if dtype == "int32":
        return np.arange(batch, dtype="int32")
    return _images((batch, *shape))


def _model(name):
    make, shape, dtype, _, _ = LAYERS[name]
    inputs = keras.Input(shape, dtype=dtype)
    layer = make()
    features = layer(inputs)
    head = keras.layers.Dense(1, name="head")(keras.layers.Flatten()(features))
    return keras.Model(inputs, head), layer


def _elements(weights):
    return int(sum(np.prod(w.shape) for w in weights))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_config_round_trip(name):
    layer = LAYERS[name][0]()
    config = layer.get_config()
    again = type(layer).from_config(config)
    assert again.get_config() == config


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_saved_and_loaded_in_a_model(name, tmp_path):
    model, layer = _model(name)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe mode; the classes are registered
    restored = loaded.get_layer(layer.name)
    assert type(restored) is type(layer) and restored.get_config() == layer.get_config()
    for saved, original in zip(restored.weights, layer.weights):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(original))
    if name != "SyntheticImages":  # the others are deterministic: same outputs
        x = _inputs(name)
        np.testing.assert_allclose(loaded(x), model(x), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_shape_and_dtype_under_mixed_float16(name):
    make, shape, dtype, _, out_dtype = LAYERS[name]
    with dtype_policy("16.32"):
        layer = make()
        x = _inputs(name)
        y = layer(x)
    expected = layer.compute_output_shape(x.shape)
    assert tuple(y.shape) == tuple(expected)
    assert keras.backend.standardize_dtype(y.dtype) == out_dtype
    assert np.isfinite(np.asarray(y, dtype="float32")).all()


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_weight_counts(name):
    _, layer = _model(name)
    trainable, frozen = LAYERS[name][3]
    assert (_elements(layer.trainable_weights), _elements(layer.non_trainable_weights)) == (trainable, frozen)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_one_gradient_step(name):
    keras.utils.set_random_seed(0)
    model, layer = _model(name)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    before = [np.array(w) for w in model.trainable_weights]
    frozen_before = [np.array(w) for w in layer.non_trainable_weights]
    x = _inputs(name)
    loss = model.train_on_batch(x, np.ones((len(x), 1), "float32"))
    assert np.isfinite(loss)
    moved = [not np.array_equal(b, np.asarray(w)) for b, w in zip(before, model.trainable_weights)]
    assert all(moved), f"{name}: some trainable weights did not move"
    if "BatchNormalization" not in name:  # BN's moving statistics move in training
        for b, w in zip(frozen_before, layer.non_trainable_weights):
            np.testing.assert_array_equal(b, np.asarray(w))  # frozen ones stay


# ----------------------------------------------------------------- schedules and the optimiser

SCHEDULES = {
    "WarmupExponentialDecay": lambda: WarmupExponentialDecay(0.1, updates_per_epoch=10,
                                                             warmup_epochs=2, decay_epochs=1.5),
    "Cosine": lambda: Cosine(0.1, total_updates=40, warmup_updates=5),
}
STEPS = (0, 1, 9, 19, 25, 39, 400)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_round_trip_gives_the_same_values(name):
    schedule = SCHEDULES[name]()
    again = type(schedule).from_config(schedule.get_config())
    assert again.get_config() == schedule.get_config()
    for step in STEPS:
        assert float(again(step)) == pytest.approx(float(schedule(step)))
    assert keras.backend.standardize_dtype(keras.ops.convert_to_tensor(schedule(3)).dtype) == "float32"


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_and_optimiser_save_load_and_step(name, tmp_path):
    keras.utils.set_random_seed(0)
    schedule = SCHEDULES[name]()
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer=RMSpropOnesStart(learning_rate=schedule, rho=0.9, momentum=0.9,
                                             epsilon=1e-3), loss="mse")
    before = np.array(model.trainable_weights[0])
    model.train_on_batch(np.ones((4, 3), "float32"), np.zeros((4, 1), "float32"))
    assert not np.array_equal(before, np.asarray(model.trainable_weights[0]))
    assert int(model.optimizer.iterations.numpy()) == 1
    assert float(model.optimizer.learning_rate) == pytest.approx(float(schedule(1)))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer) is RMSpropOnesStart
    saved = loaded.optimizer.get_config()["learning_rate"]  # the schedule, serialised
    assert saved["registered_name"] == f"effnet_lib>{name}"
    assert saved["config"] == schedule.get_config()
    assert float(loaded.optimizer.learning_rate) == pytest.approx(float(schedule(1)))


def test_schedules_step_under_mixed_float16():
    with dtype_policy("16.32"):
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
        optimizer = keras.optimizers.LossScaleOptimizer(
            RMSpropOnesStart(learning_rate=SCHEDULES["Cosine"](), rho=0.9), initial_scale=128)
        model.compile(optimizer=optimizer, loss="mse")
        loss = model.train_on_batch(np.ones((4, 3), "float32"), np.zeros((4, 1), "float32"))
    assert np.isfinite(loss) and model.trainable_weights[0].dtype == "float32"


def test_deferred_proxy_norm_returns_the_unscaled_activation_and_its_scale(tmp_path):
    layer = ProxyNormActivation("swish", deferred_scale=True)
    again = ProxyNormActivation.from_config(layer.get_config())
    assert again.deferred_scale and again.get_config() == layer.get_config()
    x = np.random.default_rng(0).normal(size=(2, 4, 4, C)).astype("float32")
    unscaled, scale = layer(x)
    full = ProxyNormActivation("swish")(x)
    assert scale.shape == (2, 1, 1, C)
    np.testing.assert_allclose(np.asarray(unscaled) * np.asarray(scale), full, rtol=1e-5)
    with pytest.raises(ValueError, match="deferred_scale"):
        ProxyNormActivation(deferred_scale=True)(np.zeros((2, C), "float32"))


def test_micro_batch_norm_equals_batch_norm_on_each_micro_batch():
    """Normalising a batch of 8 by micro-batches of 2 = BN on each pair, and the moving
    averages = four sequential BN updates."""
    x = np.random.default_rng(1).normal(2.0, 3.0, size=(8, 3, 3, C)).astype("float32")
    micro = MicroBatchNormalization(2, momentum=0.9)
    plain = keras.layers.BatchNormalization(momentum=0.9)
    micro.build(x.shape)
    plain.build((2, 3, 3, C))
    out = np.asarray(micro(x, training=True))
    pieces = [np.asarray(plain(x[i:i + 2], training=True)) for i in range(0, 8, 2)]
    np.testing.assert_allclose(out, np.concatenate(pieces), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(micro.moving_mean), np.asarray(plain.moving_mean), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(micro.moving_variance), np.asarray(plain.moving_variance),
                               rtol=1e-4)
