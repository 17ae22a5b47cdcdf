"""ImageNet-layout TFRecord shards: write them from an image folder, and parse them.

The layout is the one the usual ImageNet build scripts produce and most
ImageNet training code reads: ``train-00000-of-01024`` ...
``validation-00127-of-00128``, each record a ``tf.train.Example`` with
``image/encoded`` (JPEG bytes), ``image/class/label`` (int64, **1-based**: those
scripts keep 0 for "background", so the loader subtracts ``label_offset=1``),
``image/class/synset``, ``image/height``, ``image/width``, ``image/format``,
``image/filename`` and, where known, the object boxes
``image/object/bbox/{ymin,xmin,ymax,xmax}`` in [0, 1].

:func:`build_tfrecords` writes that layout from a class-folder data set, plus a
``labels.txt`` (one class name per line, in label order), so that the loader runs
on real shards in the tests and users can convert their own folders.
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf

from .folders import check_same_classes, list_images

SPLITS = ("train", "validation")
LABEL_OFFSET = 1
LABELS_FILE = "labels.txt"

_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64),
    "image/filename": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
}


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}"


def shard_files(path: Path, split: str) -> list[Path]:
    files = sorted(Path(path).glob(f"{split}-?????-of-?????"))
    if not files:
        raise FileNotFoundError(
            f"no {split} shards in {path}: expected files named {shard_name(split, 0, 1024)} ... "
            f"(the ImageNet TFRecord layout). `effnet data build-tfrecords FOLDER OUT` writes them "
            f"from an image folder.")
    return files


def read_labels(path: Path) -> list[str] | None:
    labels = Path(path) / LABELS_FILE
    if not labels.is_file():
        return None
    return [line.strip() for line in labels.read_text().splitlines() if line.strip()]


def parse_example(record: tf.Tensor):
    """``(encoded image, 1-based label, boxes [1, N, 4], file name)`` of one record."""
    features = tf.io.parse_single_example(record, _FEATURES)
    coords = [tf.sparse.to_dense(features[f"image/object/bbox/{k}"]) for k in ("ymin", "xmin", "ymax", "xmax")]
    boxes = tf.stack(coords, axis=-1)[None]
    return features["image/encoded"], features["image/class/label"], boxes, features["image/filename"]


def checked_records(num_classes: int, label_offset: int = LABEL_OFFSET):
    """A function from a shard's path to its ``(encoded, label, boxes, name)`` records, each
    label shifted by ``label_offset`` and checked to lie in ``[0, num_classes)``."""
    def records_of(shard_path):
        def checked(record):
            encoded, label, boxes, name = parse_example(record)
            label = label - label_offset
            ok = (label >= 0) & (label < num_classes)
            message = ["label (after subtracting label_offset) outside [0, num_classes): label",
                       label, "num_classes", num_classes, "record", name, "shard", shard_path]
            with tf.control_dependencies([tf.debugging.Assert(ok, message, summarize=3)]):
                return tf.identity(encoded), label, boxes, tf.strings.join([shard_path, ":", name])

        return tf.data.TFRecordDataset(shard_path).map(checked)

    return records_of


def _feature(value):
    if isinstance(value, bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
    if isinstance(value, int):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(value)))


def example(encoded: bytes, label: int, synset: str, filename: str, height: int, width: int,
            image_format: str = "JPEG") -> bytes:
    """One serialised record; ``label`` is already 1-based. The whole image is its box."""
    feature = {
        "image/encoded": _feature(encoded),
        "image/class/label": _feature(label),
        "image/class/synset": _feature(synset.encode()),
        "image/filename": _feature(filename.encode()),
        "image/format": _feature(image_format.encode()),
        "image/height": _feature(height),
        "image/width": _feature(width),
    }
    for key, value in zip(("ymin", "xmin", "ymax", "xmax"), (0.0, 0.0, 1.0, 1.0)):
        feature[f"image/object/bbox/{key}"] = _feature([value])
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def build_tfrecords(folder, out, train_shards: int = 8, validation_shards: int = 2,
                    progress: bool = True) -> list[Path]:
    """Convert ``folder/{train,validation}/<class>/*`` into ImageNet-layout shards in ``out``.

    PNGs are re-encoded as JPEG, as ImageNet's scripts do, so every record holds a
    JPEG. Shards are written under a temporary name and renamed when complete.
    """
    from tqdm.auto import tqdm

    folder, out = Path(folder), Path(out)
    for label, count in (("train_shards", train_shards), ("validation_shards", validation_shards)):
        if not (isinstance(count, int) and count >= 1):
            raise ValueError(f"{label}={count!r}: it must be an integer >= 1.")
    splits = {split: list_images(folder, split) for split in SPLITS}
    classes = splits["train"].class_names
    check_same_classes(classes, splits["validation"].class_names, folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split, shards in (("train", train_shards), ("validation", validation_shards)):
        listing = splits[split]
        # Round-robin so that every shard holds every class.
        items = list(zip(listing.files, listing.labels))
        bar = tqdm(total=len(items), desc=f"{split} shards", disable=not progress, unit="img")
        for index in range(shards):
            target = out / shard_name(split, index, shards)
            partial = target.with_name(target.name + ".partial")
            with tf.io.TFRecordWriter(str(partial)) as writer:
                for path, label in items[index::shards]:
                    encoded, height, width = _jpeg_bytes(path)
                    writer.write(example(encoded, label + LABEL_OFFSET, classes[label],
                                         os.path.relpath(path, folder), height, width))
                    bar.update()
            partial.replace(target)
            written.append(target)
        bar.close()
    labels = out / LABELS_FILE
    labels.write_text("".join(f"{name}\n" for name in classes))
    return written + [labels]


def _jpeg_bytes(path: Path):
    data = Path(path).read_bytes()
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    height, width = int(image.shape[0]), int(image.shape[1])
    if not tf.io.is_jpeg(data):
        data = tf.io.encode_jpeg(image, quality=95).numpy()
    return data, height, width
