"""The recipe as the reference ran it: weight decay kinds, schedules under accumulation, CutMix v1,
16.16, the dry run."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from effnet_lib import build_model, load_case
from effnet_lib.cli import main
from effnet_lib.training import recipe

LR, RHO, EPS, WD = 0.1, 0.9, 1e-3, 0.1
W0 = np.array([0.5, -1.0, 2.0], "float32")
G = np.array([1e-4, -2e-4, 3e-5], "float32")  # small gradients: where the kinds differ most


def _one_update(mode: str) -> np.ndarray:
    """One RMSprop update of ``W0`` whose loss has gradient ``G`` (plus L2's own term)."""
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(1, use_bias=False)
    model = keras.Model(inputs, dense(inputs))
    dense.kernel.assign(W0[:, None])
    if mode == "l2":
        recipe.add_l2_regularization(model, WD)
    optimizer = recipe.rmsprop(LR, RHO, EPS, momentum=0.9,
                               weight_decay=0.0 if mode == "l2" else WD,
                               weight_decay_mode="coupled" if mode == "l2" else mode)
    model.compile(optimizer=optimizer, loss=lambda y_true, y_pred: keras.ops.mean(y_pred))
    model.train_on_batch(G[None], np.zeros((1, 1), "float32"))  # d(x . w)/dw = x = G
    return np.asarray(dense.kernel)[:, 0]


def _by_hand(gradient, decoupled_shrink=0.0):
    velocity = RHO * 1.0 + (1 - RHO) * gradient ** 2  # mean squares start at 1 (TF1)
    momentum = LR * gradient / np.sqrt(velocity + EPS)  # epsilon inside the root
    return W0 * (1 - decoupled_shrink) - momentum


def test_one_rmsprop_update_of_each_weight_decay_kind_by_hand():
    coupled, decoupled, l2 = (_one_update(mode) for mode in ("coupled", "decoupled", "l2"))
    np.testing.assert_allclose(coupled, _by_hand(G + WD * W0), rtol=1e-5)
    np.testing.assert_allclose(decoupled, _by_hand(G, decoupled_shrink=LR * WD), rtol=1e-5)
    np.testing.assert_allclose(l2, coupled, rtol=1e-5)  # L2's gradient is the coupled term
    # Coupled: wd * w goes through RMSprop's normalisation (here by sqrt(0.9 + ...), the mean
    # squares starting at 1; as they decay towards g^2 the term grows); decoupled: a plain
    # shrink by lr * wd * w. Different updates, by more than float32 noise.
    assert np.abs(coupled - decoupled).min() > 1e-4


def test_two_updates_carry_mean_squares_and_momentum_as_tensorflow_1():
    """The second update, by hand: the mean squares and the momentum carried from the first
    (TensorFlow's fused RMSProp kernel on that backend, Keras's ops on the others)."""
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(1, use_bias=False)
    model = keras.Model(inputs, dense(inputs))
    dense.kernel.assign(W0[:, None])
    model.compile(optimizer=recipe.rmsprop(LR, RHO, EPS, momentum=0.9, weight_decay=WD),
                  loss=lambda y_true, y_pred: keras.ops.mean(y_pred))
    weights, velocity, momentum = W0.astype("float64"), 1.0, 0.0
    for _ in range(2):
        model.train_on_batch(G[None], np.zeros((1, 1), "float32"))
        gradient = G + WD * weights
        velocity = RHO * velocity + (1 - RHO) * gradient ** 2
        momentum = 0.9 * momentum + LR * gradient / np.sqrt(velocity + EPS)
        weights = weights - momentum
    np.testing.assert_allclose(np.asarray(dense.kernel)[:, 0], weights, rtol=1e-5)
    first_only = W0 - LR * (G + WD * W0) / np.sqrt(RHO + (1 - RHO) * (G + WD * W0) ** 2 + EPS)
    assert np.abs(weights - first_only).min() > 1e-3  # the second update mattered


def test_decay_applies_where_the_reference_applies_it():
    model = build_model("B0-G16-LN_PN", image_size=32, num_classes=4, width_coefficient=0.25,
                        depth_coefficient=0.25)
    decayed = {v.path for v in model.trainable_weights if recipe.decays(v)}
    kept = {v.path for v in model.trainable_weights if not recipe.decays(v)}
    assert all(p.endswith(("/kernel", "/bias", "/proxy_beta", "/proxy_gamma")) for p in decayed)
    assert any(p.endswith("/proxy_gamma") for p in decayed)  # beta', gamma': decayed (reference)
    assert any(p.endswith("_proxy_norm/gamma") for p in kept)  # Proxy Norm's affine: not
    assert all(p.endswith(("/beta", "/gamma")) for p in kept)
    optimizer = recipe.rmsprop(0.1, 0.9, weight_decay=1e-5)
    optimizer.build(model.trainable_weights)
    assert len(optimizer.decayed_indices) == len(decayed)


def test_schedules_step_by_weight_updates_under_accumulation():
    case = load_case("B0-G16-GN-Native_16IPU_2x8").replace(warmup_epochs=1, epochs=4)
    optimizer = recipe.optimizer_for(case, updates_per_epoch=5, epochs=4, accumulation=3,
                                     loss_scaled=False)
    variable = keras.Variable(np.ones(2, "float32"))
    for _ in range(3 * 7):  # 7 weight updates of 3 micro-steps
        optimizer.apply([tf.ones(2)], [variable])
    assert int(optimizer.iterations.numpy()) == 7
    expected = recipe.WarmupExponentialDecay(case.learning_rate, 5, 1, 0.97,
                                             case.decay_interval(4))(7)
    assert float(optimizer.learning_rate) == pytest.approx(float(expected))
    assert case.decay_interval(4) == pytest.approx(4 / 146)  # a shortened run keeps the shape
    assert load_case("B0-G16-GN-Native_16IPU_2x8").decay_interval() == pytest.approx(350 / 146)


def test_cosine_warmup_that_outlasts_the_run_as_the_reference_fine_tuning():
    cosine = recipe.Cosine(1.0, total_updates=100, warmup_updates=250)  # 5 warm-up epochs of 2
    values = np.array([float(cosine(i)) for i in range(100)])
    assert values.max() == pytest.approx(0.105, abs=0.005)  # about a tenth of the peak
    assert 35 <= values.argmax() <= 48


def test_16_16_maps_to_mixed_float16_and_says_so():
    from effnet_lib.common.precision import precision

    entry = precision("16.16")
    assert entry.policy == "mixed_float16" and entry.loss_scaled and "fp32 master" in entry.note


def test_dry_run_says_what_matches_the_reference_and_what_differs(capsys):
    assert main(["train", "--config", "B5-G1-GN-Native_16IPU_4x4", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for setting in ("global batch", "peak learning rate", "learning-rate schedule", "weight decay",
                    "Mixup", "CutMix", "precision", "weight averaging"):
        assert setting in out
    assert "768 = 2 x 96 x 4" in out and "every 2.397 epochs" in out and "16.16" in out
    assert "differs" not in out and "fp32 master" in out
    assert main(["train", "--config", "B5-G1-GN-Native_16IPU_4x4", "--dry-run",
                 "--weight-decay-mode", "decoupled", "--cutmix-version", "2"]) == 0
    out = capsys.readouterr().out
    assert "differs: the reference: 1e-05, coupled" in out and "version 2" in out
