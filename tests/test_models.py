import keras
import numpy as np
import pytest

import effnet_lib
from effnet_lib import build_model
from effnet_lib.models.summary import block_summary, count_weights

from conftest import SMALL

BATCH_INDEPENDENT = ["GN", "LN", "GN_PN", "LN_PN"]


@pytest.mark.parametrize("size", [pytest.param(s, marks=pytest.mark.slow if s >= 4 else ())
                                  for s in range(8)])
def test_g1_bn_has_keras_applications_parameter_count(size):
    # Parameters do not depend on the image size: both are built at 32 px (the smallest
    # keras.applications accepts), not at B7's 600.
    ours = build_model(f"B{size}-G1-BN", image_size=32)
    reference = getattr(keras.applications, f"EfficientNetB{size}")(weights=None,
                                                                     input_shape=(32, 32, 3))
    assert count_weights(ours.trainable_weights) == count_weights(reference.trainable_weights)
    keras.backend.clear_session()


def _randomise_batchnorm(model, rng):
    # Fresh BN layers are the identity at inference; random statistics make the check real.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
        if isinstance(layer, keras.layers.Normalization):  # the ImageNet mean/std of Keras
            count = layer.get_weights()[2]
            layer.set_weights([np.array([0.485, 0.456, 0.406]),
                               np.array([0.229, 0.224, 0.225]) ** 2, count])


@pytest.mark.parametrize("image_size", [96, 97])  # even and odd: padding must agree
def test_weight_transfer_gives_equal_outputs(rng, image_size):
    source = keras.applications.EfficientNetB0(weights=None, classifier_activation=None,
                                               input_shape=(image_size, image_size, 3))
    _randomise_batchnorm(source, rng)
    target = build_model("B0-G1-BN", image_size=image_size)
    effnet_lib.transfer_keras_applications_weights(source, target)
    images = rng.uniform(0, 255, (3, image_size, image_size, 3)).astype("float32")
    expected = source.predict(images, verbose=0)
    np.testing.assert_allclose(target.predict(images, verbose=0), expected, atol=1e-4, rtol=0)
    assert np.abs(expected).max() > 0.05  # the comparison is not between two zero outputs


def test_weight_transfer_refuses_a_different_architecture():
    source = keras.applications.EfficientNetB0(weights=None, input_shape=(64, 64, 3))
    target = build_model("B0-G16-GN", image_size=64)
    before = [w.copy() for w in target.get_weights()]
    with pytest.raises(ValueError, match="G1 .depthwise. and BN"):
        effnet_lib.transfer_keras_applications_weights(source, target)
    assert all(np.array_equal(a, b) for a, b in zip(before, target.get_weights()))


def _outputs_for_two_batches(norm, rng):
    model = build_model(f"B0-G16-{norm}", image_size=48, dropout_rate=0.0, drop_connect_rate=0.0,
                        **SMALL)
    batch = rng.uniform(0, 255, (4, 48, 48, 3)).astype("float32")
    other = batch.copy()
    other[1:] = rng.uniform(0, 255, (3, 48, 48, 3))  # same first sample, different companions
    first = np.asarray(model(batch, training=True))[0]
    second = np.asarray(model(other, training=True))[0]
    return first, second


@pytest.mark.parametrize("norm", BATCH_INDEPENDENT)
def test_batch_independent_norms_do_not_mix_samples(norm, rng):
    first, second = _outputs_for_two_batches(norm, rng)
    np.testing.assert_allclose(first, second, atol=1e-5)


def test_batchnorm_does_depend_on_the_batch(rng):
    first, second = _outputs_for_two_batches("BN", rng)
    assert np.abs(first - second).max() > 1e-3


@pytest.mark.parametrize("name, expected_layers", [
    ("B0-G1-BN", ["stem_conv", "stem_bn", "stem_activation", "block1a_dwconv", "block4b_expand_conv",
                  "block4b_se_reduce", "block4b_project_bn", "block4b_add", "top_bn", "predictions"]),
    ("B0-G16-GN", ["stem_gn", "block1a_gconv", "block2a_gn", "block4b_project_gn", "top_activation"]),
    ("B0-G16-LN_PN", ["stem_ln", "stem_proxy_norm", "block2a_expand_proxy_norm", "block2a_ln",
                      "block2a_proxy_norm", "block2a_project_ln", "top_proxy_norm"]),
])
def test_layer_names_follow_keras_convention(name, expected_layers):
    model = build_model(name, image_size=32, **SMALL)
    names = {layer.name for layer in model.layers}
    assert set(expected_layers) <= names


def test_proxy_norm_placement_matches_the_reference():
    model = build_model("B0-G16-LN_PN", image_size=32, **SMALL)
    norms = {l.name: l for l in model.layers if isinstance(l, keras.layers.GroupNormalization)}
    for name, layer in norms.items():
        if name.endswith("_project_ln"):  # no activation follows: scale kept, shift dropped
            assert (layer.center, layer.scale) == (False, True)
        else:  # Proxy Norm carries the affine
            assert (layer.center, layer.scale) == (False, False)
            assert isinstance(model.get_layer(name[:-3] + "_proxy_norm"),
                              effnet_lib.models.proxy_norm.ProxyNormActivation)
    # Squeeze-excite keeps the plain activation.
    assert model.get_layer("block2a_se_reduce").activation.__name__ in ("silu", "swish")


def test_group_norm_uses_four_groups_and_layer_norm_one():
    gn = build_model("B0-G16-GN", image_size=32, **SMALL).get_layer("block2a_gn")
    ln = build_model("B0-G16-LN", image_size=32, **SMALL).get_layer("block2a_ln")
    assert (gn.groups, gn.epsilon, ln.groups) == (4, 1e-3, 1)


def test_grouped_conv_has_the_spec_groups():
    model = build_model("B3-G16-GN", image_size=32, width_coefficient=1.2, depth_coefficient=0.5)
    assert model.get_layer("block1a_gconv").groups == 2
    assert model.get_layer("block2a_gconv").groups == 6


def test_accepts_uint8_images_in_0_255(rng):
    model = build_model("B0-G16-GN", image_size=32, **SMALL)
    images = rng.integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    out = np.asarray(model(images))
    np.testing.assert_allclose(out, np.asarray(model(images.astype("float32"))), atol=1e-5)
    assert out.shape == (2, 10)


def test_block_summary_counts_every_trainable_weight():
    model = build_model("B0-G16-LN_PN", image_size=32, **SMALL)
    spec = effnet_lib.resolve_spec("B0-G16-LN_PN", **SMALL)
    table = block_summary(model, spec, 32)
    assert table["parameters"].sum() == count_weights(model.trainable_weights)
    assert list(table["block"][1:-2]) == spec.block_names()


def test_saved_model_reloads_in_safe_mode(tmp_path, rng):
    model = build_model("B0-G16-LN_PN", image_size=32, **SMALL)
    path = tmp_path / "model.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    images = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(again(images)), np.asarray(model(images)), atol=1e-6)


def test_case_names_build_their_model():
    model = build_model("B0-G16-LN_PN-Half_16IPU_2x8", **SMALL)
    assert model.input_shape == (None, 160, 160, 3) and model.output_shape == (None, 10)


def test_bad_image_size_is_rejected():
    with pytest.raises(ValueError, match="image_size=0 is not valid"):
        build_model("B0", image_size=0)


def test_split_grouped_conv_equals_keras_grouped_conv(tmp_path):
    from effnet_lib.models import grouped_conv
    from effnet_lib.models.conv_impl import grouped_conv_class

    x = np.random.default_rng(0).normal(size=(2, 9, 9, 32)).astype("float32")
    native = keras.layers.Conv2D(48, 3, strides=2, padding="same", groups=4, use_bias=False)
    split = grouped_conv.Conv2D(48, 3, strides=2, padding="same", groups=4, use_bias=False)
    native.build(x.shape)
    split.build(x.shape)
    split.set_weights(native.get_weights())
    np.testing.assert_allclose(split(x), native(x), atol=1e-5)
    kwargs = dict(image_size=32, num_classes=4, width_coefficient=0.25, depth_coefficient=0.25)
    a = build_model("B0-G16-GN", conv_impl="native", **kwargs)
    b = build_model("B0-G16-GN", conv_impl="split", **kwargs)
    assert isinstance(b.get_layer("block2a_gconv"), grouped_conv.Conv2D)
    assert [w.shape for w in a.weights] == [w.shape for w in b.weights]
    b.set_weights(a.get_weights())
    a.save_weights(tmp_path / "native.weights.h5")  # weight files are interchangeable
    b.load_weights(tmp_path / "native.weights.h5")
    images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(b(images), a(images), atol=1e-4)
    with pytest.raises(ValueError, match="conv_impl"):
        grouped_conv_class("fast")


# ----------------------------------------------------------------- every valid model name

def _name_parts(name):
    size, group, norm = name.split("-")
    return int(group[1:]), norm.lower()


@pytest.mark.parametrize("name", effnet_lib.models.valid_model_names())
def test_every_valid_model_name_gives_the_spec_it_says(name):
    """Each name, at its own size: the size's width, depth, resolution and dropout (as
    keras.applications has them), the groups and norm it names, and the expansion G16 implies."""
    from effnet_lib.models.spec import PRESETS, as_spec

    group_size, norm = _name_parts(name)
    spec = as_spec(name)
    size = name.split("-")[0]
    assert (spec.group_size, spec.norm, spec.name) == (group_size, norm, name)
    assert (spec.width_coefficient, spec.depth_coefficient, spec.resolution,
            spec.dropout_rate) == PRESETS[size]
    assert spec.expand_ratio == (6 if group_size == 1 else 4)


# Built and run for B0 only: at the small width and depth this test overrides, the other
# sizes build the same network (they differ only in width, depth and resolution, which the
# test above checks for every name; test_g1_bn_has_keras_applications_parameter_count
# builds every size at its own width and depth).
@pytest.mark.parametrize("name", [n for n in effnet_lib.models.valid_model_names()
                                  if n.startswith("B0-")])
def test_every_group_and_norm_builds_what_its_name_says(name):
    """Each group size and norm at a small width and depth: the built model holds the layers
    the name promises and exactly the parameters the profiler counts, and runs."""
    from effnet_lib.models.norms import norm_kind
    from effnet_lib.profiling import profile

    group_size, norm = _name_parts(name)
    model = build_model(name, image_size=32, num_classes=4, width_coefficient=0.1,
                        depth_coefficient=0.25)
    spec = model.effnet_spec
    assert (spec.group_size, spec.norm, spec.name) == (group_size, norm, name)
    names = [layer.name for layer in model.layers]
    spatial = [n for n in names if n.endswith(("_dwconv", "_gconv"))]
    assert len(spatial) == len(spec.blocks())
    assert all(n.endswith("_dwconv") == b.depthwise for n, b in zip(spatial, spec.blocks()))
    kind = norm_kind(norm).kind
    assert f"stem_{kind}" in names and f"top_{kind}" in names
    assert ("stem_proxy_norm" in names) == norm.endswith("_pn")
    assert count_weights(model.trainable_weights) == profile(spec, image_size=32).total_params
    out = model(np.zeros((2, 32, 32, 3), "float32"), training=False)
    assert out.shape == (2, 4) and np.isfinite(np.asarray(out)).all()
    keras.backend.clear_session()


def test_deferred_proxy_norm_scale_is_wired_as_the_reference():
    """proxy_norm_scale='deferred': SE sees the unscaled activation, its gate carries 1/sigma;
    the head drops 1/sigma; the weights are the same as the paper-formula model's."""
    kwargs = dict(image_size=32, num_classes=4, width_coefficient=0.25, depth_coefficient=0.25)
    formula = build_model("B0-G16-LN_PN", **kwargs)
    deferred = build_model("B0-G16-LN_PN", proxy_norm_scale="deferred", **kwargs)
    assert [w.shape for w in formula.weights] == [w.shape for w in deferred.weights]
    deferred.set_weights(formula.get_weights())
    block = "block2a"
    layer = deferred.get_layer(f"{block}_proxy_norm")
    probe = keras.Model(deferred.inputs, [*layer.output, deferred.get_layer(f"{block}_se_expand").output,
                                          deferred.get_layer(f"{block}_se_excite").output,
                                          deferred.get_layer(f"{block}_se_squeeze").input])
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    unscaled, scale, gate, excited, squeezed = (np.asarray(t) for t in probe(images))
    mean, var = (np.asarray(m) for m in layer.proxy_moments())
    np.testing.assert_allclose(scale[0, 0, 0], 1 / np.sqrt(var + layer.epsilon), rtol=1e-5)
    np.testing.assert_allclose(squeezed, unscaled)  # SE reads the unscaled features
    np.testing.assert_allclose(excited, unscaled * gate * scale, rtol=1e-5, atol=1e-6)
    head = deferred.get_layer("top_proxy_norm")
    assert deferred.get_layer("avg_pool").input is head.output[0]  # 1/sigma dropped at the head
    assert not np.allclose(formula(images), deferred(images))  # a different function
    with pytest.raises(ValueError, match="proxy_norm_scale"):
        build_model("B0-G16-LN_PN", proxy_norm_scale="later", **kwargs)
