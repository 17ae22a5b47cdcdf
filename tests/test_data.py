"""Input pipelines: every source on small generated data, preprocessing, mixing, bad input."""

import shutil

import numpy as np
import pytest
import tensorflow as tf

from effnet_lib.cli import main
from effnet_lib.data import Augmentation, make_dataset, parse_source
from effnet_lib.data.bench import GOAL, bench, explain
from effnet_lib.data.mixing import cutmix, mix_batch, mixup, soft_labels
from effnet_lib.data.preprocessing import is_complete_image, preprocess_train, preprocess_valid
from effnet_lib.data.tfrecords import build_tfrecords

CLASSES = 4


@pytest.fixture(scope="module")
def shapes_dir(shapes_set):
    return shapes_set(image_size=48, train=24, validation=12, classes=CLASSES, seed=3)


@pytest.fixture(scope="module")
def shards_dir(shapes_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    build_tfrecords(shapes_dir, out, train_shards=3, validation_shards=2, progress=False)
    return out


@pytest.fixture
def folder_copy(shapes_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(shapes_dir, copy)
    return copy


def _all(data):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in data.dataset])
    return np.concatenate(images), np.concatenate(labels)


@pytest.mark.parametrize("source", ["folder", "shapes"])
def test_folder_sources_give_uint8_images_and_every_label(source, shapes_dir):
    data = make_dataset(f"{source}:{shapes_dir}", "validation", 32, 5)
    images, labels = _all(data)
    assert images.shape == (12, 32, 32, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int32 and sorted(np.bincount(labels)) == [3] * CLASSES
    assert data.class_names == sorted(data.class_names) and data.num_classes == CLASSES
    assert data.steps_per_epoch == 3  # validation keeps the last, partial batch


def test_tfrecord_round_trip_keeps_labels_and_pixels(shapes_dir, shards_dir):
    assert len(list(shards_dir.glob("train-*-of-00003"))) == 3
    kwargs = dict(split="validation", image_size=40, batch_size=12)
    folder_images, folder_labels = _all(make_dataset(f"folder:{shapes_dir}", **kwargs))
    shard_images, shard_labels = _all(make_dataset(f"imagenet:{shards_dir}", **kwargs))
    # Shards interleave the files, so compare as sets of (label, image) pairs.
    def keyed(images, labels):
        return sorted((int(label), image.astype(int).sum()) for image, label in zip(images, labels))
    assert [k[0] for k in keyed(folder_images, folder_labels)] == [k[0] for k in keyed(shard_images, shard_labels)]
    assert keyed(folder_images, folder_labels) == keyed(shard_images, shard_labels)  # JPEG bytes kept as is


def test_training_preprocessing_is_random_but_seeded(shapes_dir):
    def first_batch(seed):
        data = make_dataset(f"folder:{shapes_dir}", "train", 32, 8, seed=seed)
        return next(iter(data.dataset))[0].numpy()
    assert np.array_equal(first_batch(1), first_batch(1))
    assert not np.array_equal(first_batch(1), first_batch(2))


@pytest.mark.parametrize("mixing", [None, Augmentation(mixup_alpha=0.2, cutmix_lambda=0.5)],
                         ids=["sparse", "mixup-cutmix"])
def test_a_stream_started_at_batch_k_is_the_same_stream_from_k(shapes_dir, mixing):
    """What a resumed run relies on: the seeded, repeated stream started at batch 5 gives
    exactly the batches 5, 6, 7 ... of the stream from 0, across an epoch boundary."""
    def batches(start, count):
        data = make_dataset(f"folder:{shapes_dir}", "train", 32, 8, augmentation=mixing,
                            repeat=True, seed=3, start_batch=start)
        return [tuple(t.numpy() for t in batch) for batch in data.dataset.take(count)]

    whole = batches(0, 9)
    assert whole[5][0].shape[0] == 8 and len(whole) == 9
    for expected, got in zip(whole[5:], batches(5, 4)):
        assert np.array_equal(expected[0], got[0]) and np.array_equal(expected[1], got[1])
    with pytest.raises(ValueError, match="start_batch"):
        make_dataset(f"folder:{shapes_dir}", "train", 32, 8, start_batch=-1)


def test_the_two_transforms_give_the_requested_size_and_range():
    image = tf.cast(tf.random.stateless_uniform([90, 60, 3], [1, 2], maxval=255), tf.uint8)
    for encoded in (tf.io.encode_jpeg(image), tf.io.encode_png(image)):
        train = preprocess_train(encoded, 33, tf.constant([4, 5], tf.int64))
        valid = preprocess_valid(encoded, 33)
        for out in (train, valid):
            assert out.shape == (33, 33, 3) and out.dtype == tf.uint8
        assert np.array_equal(valid, preprocess_valid(encoded, 33))  # no randomness
    with pytest.raises(ValueError, match="crop_ratio"):
        preprocess_valid(encoded, 33, crop_ratio=1.5)


def test_validation_crop_is_the_centre():
    # Left half black, right half white, centre column grey-ish: a centre crop of a
    # wide image must keep both halves equally.
    image = np.zeros((64, 128, 3), np.uint8)
    image[:, 64:] = 255
    out = preprocess_valid(tf.io.encode_png(image), 32).numpy().astype(float)
    assert abs(out[:, :16].mean() - 0) < 3 and abs(out[:, 16:].mean() - 255) < 3


def test_validation_pixels_are_the_rounded_bilinear_resize_of_the_centre_crop():
    # The crop-first variant. A PNG decodes losslessly, so the expected pixels can be
    # computed independently.
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    out = preprocess_valid(tf.io.encode_png(image), 24, crop_ratio=0.8, resize_first=False).numpy()
    crop = image[4:36, 9:41].astype(np.float32)  # side round(40 * 0.8) = 32, centred
    expected = np.round(tf.image.resize(crop, [24, 24], method="bilinear").numpy())
    assert np.array_equal(out, expected.astype(np.uint8))


def test_train_with_valid_preprocessing_uses_the_validation_transform(shapes_dir):
    kwargs = dict(image_size=32, batch_size=24, shuffle=False, seed=0)
    plain = _all(make_dataset(f"folder:{shapes_dir}", "train", training=False, **kwargs))[0]
    fine_tune = _all(make_dataset(f"folder:{shapes_dir}", "train",
                                  augmentation=Augmentation(valid_preprocessing=True), **kwargs))[0]
    augmented = _all(make_dataset(f"folder:{shapes_dir}", "train", **kwargs))[0]
    assert np.array_equal(plain, fine_tune) and not np.array_equal(plain, augmented)


def test_soft_labels_mixup_and_cutmix_keep_label_mass():
    labels = tf.constant([0, 1, 2, 3, 1, 2])
    soft = soft_labels(labels, 5, 0.1)
    assert np.allclose(soft.numpy().sum(1), 1) and np.isclose(soft.numpy()[0, 0], 0.9)
    images = tf.cast(tf.reshape(tf.range(6), [6, 1, 1, 1]) * 40 * tf.ones([6, 16, 16, 3], tf.int32), tf.uint8)
    seed = tf.constant([1, 2], tf.int64)
    mixed_images, mixed = mixup(images, soft, 0.2, seed)
    assert np.allclose(mixed.numpy().sum(1), 1)
    # Each image keeps at least half of itself, and its partner is the previous image.
    own = mixed.numpy()[np.arange(6), labels.numpy()]
    assert (own >= 0.5 * 0.9 - 1e-6).all()
    cut_images, cut = cutmix(images, soft_labels(labels, 5), 0.75, seed, version=2)
    kept_pixels = (cut_images.numpy()[..., 0] == images.numpy()[..., 0]).mean(axis=(1, 2))
    assert np.allclose(cut.numpy().sum(1), 1)
    assert np.allclose(cut.numpy()[np.arange(6), labels.numpy()], kept_pixels)  # labels follow pixels
    assert abs(kept_pixels[0] - 0.75) < 0.1  # lambda is about the share kept
    both_images, both = mix_batch(images, labels, 5, seed, label_smoothing=0.1, mixup_alpha=0.2,
                                  cutmix_lambda=0.8)
    assert both.shape == (6, 5) and np.allclose(both.numpy().sum(1), 1)
    with pytest.raises(ValueError, match="cutmix_lambda"):
        mix_batch(images, labels, 5, seed, cutmix_lambda=0.0)


def test_mixing_in_the_pipeline_gives_soft_labels(shapes_dir):
    augmentation = Augmentation(mixup_alpha=0.2, cutmix_lambda=0.9, label_smoothing=0.1)
    data = make_dataset(f"folder:{shapes_dir}", "train", 32, 8, augmentation=augmentation, seed=0)
    images, labels = next(iter(data.dataset))
    assert images.dtype == tf.uint8 and labels.shape == (8, CLASSES)
    assert np.allclose(labels.numpy().sum(1), 1, atol=1e-5)


@pytest.mark.parametrize("on_device", [False, True])
def test_synthetic_data(on_device):
    import keras

    from effnet_lib import build_model

    kind = "synthetic-device" if on_device else "synthetic-host"
    data = make_dataset(kind, "train", 32, 4, num_classes=10, seed=0)
    inputs, labels = next(iter(data.dataset))
    assert labels.shape == (4,) and data.num_examples is None and data.on_device == on_device
    assert inputs.shape == ((4,) if on_device else (4, 32, 32, 3))
    model = data.wrap_model(build_model("B0-G1-GN", image_size=32, num_classes=10,
                                        width_coefficient=0.25, depth_coefficient=0.25))
    logits = model(inputs)
    assert logits.shape == (4, 10) and np.isfinite(keras.ops.convert_to_numpy(logits)).all()


def test_a_truncated_image_is_named_or_skipped_and_counted(folder_copy):
    victim = sorted((folder_copy / "train").rglob("*.jpg"))[5]
    victim.write_bytes(victim.read_bytes()[:300])
    with pytest.raises(tf.errors.InvalidArgumentError, match=victim.name):
        _all(make_dataset(f"folder:{folder_copy}", "train", 32, 4))
    data = make_dataset(f"folder:{folder_copy}", "train", 32, 1, skip_corrupt=True)
    images, _ = _all(data)
    assert len(images) == 23 and data.skipped() == 1
    assert is_complete_image(tf.constant(b"not an image at all")).numpy() == False  # noqa: E712


@pytest.mark.parametrize("damage, message", [
    (lambda root: shutil.rmtree(next((root / "train").iterdir())) or None, "the train and validation class folders differ"),
    (lambda root: [p.unlink() for p in next((root / "validation").iterdir()).iterdir()], "holds no images"),
    (lambda root: shutil.rmtree(root / "validation") or (root / "validation").mkdir(), "holds no class sub-folders"),
    (lambda root: shutil.rmtree(root / "train"), "has no train/ folder"),
])
def test_bad_folders_get_specific_errors(folder_copy, damage, message):
    damage(folder_copy)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        make_dataset(f"folder:{folder_copy}", "train" if "train/" in message else "validation", 32, 4)


def test_tfrecord_labels_beyond_the_class_count_are_an_error(shards_dir, tmp_path):
    for shard in shards_dir.glob("validation-*"):
        shutil.copy(shard, tmp_path)
    (tmp_path / "labels.txt").write_text("a\nb\n")  # two classes, but labels go to 4
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside"):
        _all(make_dataset(f"imagenet:{tmp_path}", "validation", 32, 4))


@pytest.mark.parametrize("source, message", [
    ("", "accepted shapes"),
    ("synthetic", "synthetic-host"),
    ("folder", "needs a PATH"),
    ("webdataset:/x", "is not known"),
])
def test_bad_sources_are_explained(source, message):
    with pytest.raises(ValueError, match=message):
        parse_source(source)


def test_missing_paths_and_missing_shards(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_dataset(f"folder:{tmp_path}/nope", "train", 32, 4)
    with pytest.raises(FileNotFoundError, match="no train shards"):
        make_dataset(f"imagenet:{tmp_path}", "train", 32, 4)
    with pytest.raises(FileNotFoundError, match="make-shapes"):
        make_dataset(f"shapes:{tmp_path}", "train", 32, 4)


def test_tfds_without_the_package_says_how_to_fix_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(ImportError, match="pip install tensorflow-datasets"):
        make_dataset("tfds:imagenette", "train", 32, 4)


def test_data_commands(shapes_dir, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["data", "show", f"folder:{shapes_dir}", "--count", "6", "--image-size", "32",
                 "--mixup-alpha", "0.2", "--out", str(out)]) == 0
    assert out.stat().st_size > 5000
    assert main(["data", "bench", f"folder:{shapes_dir}", "--image-size", "32", "--batch-size", "4",
                 "--images", "40", "--rounds", "1"]) == 0
    printed = capsys.readouterr().out
    assert "training pipeline" in printed and "bare decode" in printed and "ratio" in printed
    assert "sources 48x48 px" in printed and "goal" in printed
    assert main(["data", "build-tfrecords", str(shapes_dir), str(tmp_path / "s"), "--train-shards", "2"]) == 0
    assert len(list((tmp_path / "s").glob("*-of-*"))) == 4
    assert main(["data", "show", "folder:/nonexistent"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bench_takes_turns_and_reports_medians(shapes_dir, shards_dir):
    result = bench(f"folder:{shapes_dir}", 32, 4, images=8, rounds=3, warmup=1, progress=False)
    rounds = result["rounds_measured"]
    assert len(rounds) == 3 and all(r["pipeline"] > 0 and r["bare_decode"] > 0 for r in rounds)
    assert result["ratio"] == sorted(r["pipeline"] / r["bare_decode"] for r in rounds)[1]
    assert result["pipeline_images_per_s"] == sorted(r["pipeline"] for r in rounds)[1]
    assert result["source_size"] == (48, 48)
    shards = bench(f"imagenet:{shards_dir}", 32, 4, images=4, rounds=1, warmup=1, progress=False)
    assert shards["source_size"] == (48, 48) and shards["ratio"] > 0
    with pytest.raises(ValueError, match="rounds=0"):
        bench(f"folder:{shapes_dir}", 32, 4, images=8, rounds=0, progress=False)


def test_bench_says_what_bounds_the_pipeline():
    base = dict(image_size=224, source_size=(128, 128))
    assert "meets the goal" in explain(dict(base, ratio=GOAL))
    assert "resizing up" in explain(dict(base, ratio=0.5))
    assert "cost more than decoding" in explain(dict(base, ratio=0.5, source_size=(448, 448)))
    assert "no files" in explain(dict(base))


@pytest.mark.parametrize("cutmix_lambda", [0.95, 0.8])
def test_cutmix_version_1_draws_follow_the_reference_law(cutmix_lambda):
    from effnet_lib.data.mixing import cutmix_v1_lambda, cutmix_v1_statistics

    draws = np.array([float(cutmix_v1_lambda(cutmix_lambda, tf.constant([7, i], tf.int64)))
                      for i in range(4000)])
    expected = cutmix_v1_statistics(cutmix_lambda)
    uncut = np.mean(draws == 1.0)
    assert expected["no_cut"] == pytest.approx(1.55 * cutmix_lambda - 0.96)
    assert uncut == pytest.approx(expected["no_cut"], abs=0.03)  # 4 standard errors at 4,000
    cut = draws[draws < 1.0]
    assert cut.min() >= 0.0 and cut.mean() == pytest.approx(expected["mean_kept_when_cut"], abs=0.02)
    assert expected["mean_kept_when_cut"] == pytest.approx(0.7687, abs=1e-4)


def test_cutmix_versions_in_the_pipeline(shapes_dir):
    def uncut_batches(version):
        augmentation = Augmentation(cutmix_lambda=0.9, cutmix_version=version)
        data = make_dataset(f"folder:{shapes_dir}", "train", 32, 8, augmentation=augmentation,
                            seed=0, repeat=True)
        uncut = []
        for _, labels in data.dataset.take(40):
            assert np.allclose(labels.numpy().sum(1), 1, atol=1e-5)
            uncut.append(bool(np.all(labels.numpy().max(1) == 1.0)))  # every label one-hot
        return np.mean(uncut)

    assert uncut_batches(2) == 0.0  # version 2 cuts every batch by the same share
    assert 0.15 <= uncut_batches(1) <= 0.75  # version 1 leaves 1.55 x 0.9 - 0.96 = 43.5% uncut


def test_validation_resizes_the_short_side_then_crops_the_centre():
    image = np.random.default_rng(3).integers(0, 256, (60, 90, 3)).astype(np.uint8)
    encoded = tf.io.encode_png(image)
    out = preprocess_valid(encoded, 28).numpy()  # short side to int(28 * 256 / 224) = 32
    resized = tf.image.resize(image.astype(np.float32), [32, 48], method="bilinear").numpy()
    expected = np.round(resized[2:30, 10:38]).astype(np.uint8)
    assert np.array_equal(out, expected)
    crop_first = preprocess_valid(encoded, 28, resize_first=False).numpy()
    assert np.abs(crop_first.astype(int) - out.astype(int)).mean() < 20  # same window, resampled
