import json
import os

import numpy as np
import pytest
from PIL import Image

from effnet_lib.data import shapes
from effnet_lib.data.shapes import CLASS_NAMES, make_shapes, read_metadata, render

SMALL = dict(image_size=24, train=12, validation=6, classes=3, seed=7, progress=False)


def files(root):
    """{relative path: bytes} of every file under root."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def images(root):
    return {name: data for name, data in files(root).items() if name.endswith(".jpg")}


def test_class_names_are_unique_folder_safe_and_enough():
    assert len(CLASS_NAMES) >= 12 and len(set(CLASS_NAMES)) == len(CLASS_NAMES)
    assert all(name.replace("_", "").isalnum() and name == name.lower() for name in CLASS_NAMES)


@pytest.mark.parametrize("size", [16, 33, 64, 200])
def test_render_dtype_and_shape(size):
    for label in (0, len(CLASS_NAMES) - 1):
        image = render(label, np.random.default_rng(0), size)
        assert image.dtype == np.uint8 and image.shape == (size, size, 3)
        assert image.std() > 5  # not a blank canvas


def test_render_is_deterministic_for_a_generator_seed():
    a = render(4, np.random.default_rng([1, 0, 5]), 48)
    b = render(4, np.random.default_rng([1, 0, 5]), 48)
    c = render(4, np.random.default_rng([2, 0, 5]), 48)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_same_scene_at_every_size():
    # Geometry is drawn in relative units, so a small image is about a big one shrunk.
    big = render(2, np.random.default_rng(3), 128)
    small = render(2, np.random.default_rng(3), 32)
    shrunk = np.asarray(Image.fromarray(big).resize((32, 32), Image.BOX), np.float32)
    assert np.abs(shrunk - small).mean() < 12


def test_render_rejects_bad_arguments():
    with pytest.raises(ValueError, match="class_index"):
        render(len(CLASS_NAMES), np.random.default_rng(0), 32)
    with pytest.raises(ValueError, match="image_size"):
        render(0, np.random.default_rng(0), 8)


def changed(a, b):
    """Fraction of pixels that clearly differ between two images."""
    return (np.abs(a.astype(int) - b.astype(int)).max(-1) > 40).mean()


def test_classes_look_different():
    # One seed gives the same scene for every class: only the class shape changes.
    size, seeds = 48, range(12)
    scenes = [[render(label, np.random.default_rng([seed]), size) for label in range(len(CLASS_NAMES))]
              for seed in seeds]
    for images_of_seed in scenes:
        for a in range(len(CLASS_NAMES)):
            for b in range(a):
                assert changed(images_of_seed[a], images_of_seed[b]) > 0.002, (CLASS_NAMES[a], CLASS_NAMES[b])

    def mean_change(a, b):
        a, b = CLASS_NAMES.index(a), CLASS_NAMES.index(b)
        return np.mean([changed(images_of_seed[a], images_of_seed[b]) for images_of_seed in scenes])

    # Coarse differences are large; the fine ones - what resolution is needed for -
    # are small, but there: an extra side, a small dot.
    assert mean_change("triangle", "circle") > 0.15
    assert 0.01 < mean_change("heptagon", "octagon") < 0.06
    assert 0.003 < mean_change("circle", "circle_dot") < 0.03


def test_layout_counts_and_metadata(tmp_path):
    out = make_shapes(tmp_path / "set", **SMALL)
    assert out == (tmp_path / "set").absolute()
    names = list(CLASS_NAMES[:3])
    for split, count in (("train", 12), ("validation", 6)):
        assert sorted(p.name for p in (out / split).iterdir()) == sorted(names)
        per_class = [len(list((out / split / name).glob("*.jpg"))) for name in names]
        assert per_class == [count // 3] * 3  # balanced
    # Image i has class i % classes and is a real JPEG of the asked size.
    first = out / "train" / names[1] / "000001.jpg"
    with Image.open(first) as image:
        assert image.format == "JPEG" and image.size == (24, 24) and image.mode == "RGB"
    metadata = read_metadata(out)
    assert metadata == json.loads((out / "shapes.json").read_text())
    assert {k: metadata[k] for k in ("generator", "version", "image_size", "train", "validation",
                                     "classes", "class_names", "seed")} == {
        "generator": "effnet-kit shapes", "version": 1, "image_size": 24, "train": 12,
        "validation": 6, "classes": 3, "class_names": names, "seed": 7}
    assert metadata["seconds"] >= 0
    # Nothing left beside it.
    assert [p.name for p in tmp_path.iterdir()] == ["set"]


def test_no_validation_split(tmp_path):
    out = make_shapes(tmp_path / "set", **dict(SMALL, validation=0))
    assert not (out / "validation").exists() and len(images(out)) == 12


def test_deterministic_and_independent_of_workers(tmp_path):
    params = dict(SMALL, train=30, validation=9)
    one = images(make_shapes(tmp_path / "one", workers=1, **params))
    two = images(make_shapes(tmp_path / "two", workers=2, **params))
    again = images(make_shapes(tmp_path / "again", workers=1, **params))
    other = images(make_shapes(tmp_path / "other", workers=1, **dict(params, seed=8)))
    assert one == two == again
    assert one.keys() == other.keys()
    assert all(one[name] != other[name] for name in one)


def test_existing_identical_set_is_reused(tmp_path):
    out = make_shapes(tmp_path / "set", **SMALL)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert make_shapes(tmp_path / "set", **dict(SMALL, workers=2)) == out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_existing_different_set_is_refused(tmp_path):
    make_shapes(tmp_path / "set", **SMALL)
    with pytest.raises(FileExistsError, match=r"different shapes set.*image_size=24 \(asked 32\)"):
        make_shapes(tmp_path / "set", **dict(SMALL, image_size=32))


def test_foreign_folder_is_refused_and_left_alone(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"not empty.*notes\.txt.*not a shapes data set"):
        make_shapes(foreign, **SMALL)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="not a folder"):
        make_shapes(tmp_path / "file", **SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "mine"]


def test_empty_folder_is_filled(tmp_path):
    (tmp_path / "set").mkdir()
    assert read_metadata(make_shapes(tmp_path / "set", **SMALL))["train"] == 12


def test_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing(job):
        if calls:
            raise RuntimeError("simulated crash")
        calls.append(job)
        return original(job)

    original = shapes._write_images
    monkeypatch.setattr(shapes, "_write_images", failing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        make_shapes(tmp_path / "set", **dict(SMALL, train=300, workers=1))
    assert calls  # some images were written before the crash
    assert list(tmp_path.iterdir()) == []  # neither the set nor its partial folder


@pytest.mark.parametrize("change, message", [
    (dict(image_size=8), "image_size=8: it must be an integer in 16..2048"),
    (dict(image_size=64.0), "image_size=64.0"),
    (dict(classes=1), "classes=1: it must be an integer in 2..16"),
    (dict(classes=len(CLASS_NAMES) + 1), "CLASS_NAMES has"),
    (dict(train=2), "train=2: it must be an integer >= 3, at least one image per class"),
    (dict(validation=-1), "validation=-1: it must be an integer >= 0"),
    (dict(validation=2), "validation=2: it must be 0 .* or at least one image per class"),
    (dict(seed=-1), "seed=-1"),
    (dict(seed=True), "seed=True"),
    (dict(workers=0), "workers=0"),
])
def test_bad_arguments_are_explained(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        make_shapes(tmp_path / "set", **dict(SMALL, **change))
    assert not (tmp_path / "set").exists()


def test_read_metadata_says_how_to_make_a_set(tmp_path):
    with pytest.raises(FileNotFoundError, match="effnet data make-shapes --output-dir DIR"):
        read_metadata(tmp_path)


def test_all_classes_render_through_make_shapes(tmp_path):
    out = make_shapes(tmp_path / "all", **dict(SMALL, classes=len(CLASS_NAMES),
                                                    train=len(CLASS_NAMES), validation=0))
    assert sorted(p.name for p in (out / "train").iterdir()) == sorted(CLASS_NAMES)
    assert os.path.getsize(out / "train" / CLASS_NAMES[-1] / f"{len(CLASS_NAMES) - 1:06d}.jpg") > 0
