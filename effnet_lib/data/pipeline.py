"""``make_dataset``: one entry point from a source name to a batched tf.data pipeline.

Sources (a string, as on the command line):

==========================  ==================================================================
``shapes``                  the embedded default: generated on first use (see ``shapes.py``)
                            into ``$EFFNET_DATA_DIR`` (default ``~/.cache/effnet-kit``)
``shapes:PATH``             a shapes set made by ``effnet data make-shapes --out PATH``
``folder:PATH``             ``PATH/{train,validation|val}/<class>/*.jpg|png``
``imagenet:PATH``           ImageNet-layout TFRecords ``PATH/train-00000-of-01024`` ...
``tfds:NAME``               a tensorflow-datasets data set already on disk (or downloadable)
``synthetic-host``          random images made once by tf.data on the host (the IPU kit's
                            ``--synthetic-data cpu``)
``synthetic-device``        random images made inside the compiled step; the data set only
                            carries labels (``--synthetic-data ipu``); wrap the model with
                            :meth:`Data.wrap_model`
==========================  ==================================================================

Every encoded source goes through the same steps: list, (shard), shuffle, read,
check, decode + crop + resize (parallel), batch, mix, prefetch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf

from . import folders, tfrecords
from .mixing import mix_batch, validate as validate_mixing
from .preprocessing import AREA_RANGE, CROP_RATIO, WHOLE_IMAGE, is_complete_image, preprocess_train, preprocess_valid

SOURCES = ("shapes", "shapes:PATH", "folder:PATH", "imagenet:PATH", "tfds:NAME",
           "synthetic-host", "synthetic-device")
SPLITS = ("train", "validation")
DEFAULT_SHAPES = dict(image_size=128, train=10000, validation=2000, classes=10, seed=0)
SYNTHETIC_CLASSES = 1000


@dataclass
class Data:
    """A batched pipeline and what is known about it."""

    dataset: tf.data.Dataset
    source: str
    split: str
    class_names: list[str]
    image_size: int
    batch_size: int
    training: bool
    num_examples: int | None = None  # None: endless (synthetic)
    drop_remainder: bool = False
    files: list[str] = field(default_factory=list, repr=False)  # image files or shards
    file_kind: str = "images"  # or "tfrecord"
    on_device: bool = False
    _skipped: tf.Variable | None = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def steps_per_epoch(self) -> int | None:
        if self.num_examples is None:
            return None
        rounding = math.floor if self.drop_remainder else math.ceil
        return int(rounding(self.num_examples / self.batch_size))

    def skipped(self) -> int:
        """Truncated or non-image files skipped so far (``skip_corrupt=True``)."""
        return 0 if self._skipped is None else int(self._skipped.numpy())

    def wrap_model(self, model):
        """For ``synthetic-device``: the model fed by images made inside its own step."""
        if not self.on_device:
            return model
        from .synthetic import with_synthetic_images

        return with_synthetic_images(model, self.image_size)


def readable_input_error(error: Exception) -> str:
    """The useful part of an error raised inside a tf.data pipeline (its assertion and file)."""
    text = str(error)
    marker = "assertion failed:"
    if marker in text:
        return "input pipeline " + text[text.index(marker):].splitlines()[0]
    return text.strip().splitlines()[-1] if text.strip() else type(error).__name__


def parse_source(source: str) -> tuple[str, str | None]:
    """``"folder:/data/x"`` -> ``("folder", "/data/x")``; a clear error for anything else."""
    if not isinstance(source, str) or not source:
        raise ValueError(f"source={source!r}: accepted {', '.join(SOURCES)}.")
    kind, _, argument = source.partition(":")
    if kind in ("synthetic-host", "synthetic-device", "shapes") and not argument:
        return kind, None
    if kind in ("shapes", "folder", "imagenet", "tfds") and argument:
        return kind, argument
    if kind == "synthetic":
        raise ValueError("source='synthetic': say where the images are made: synthetic-host "
                         "(tf.data, on the host) or synthetic-device (inside the step).")
    if kind in ("folder", "imagenet", "tfds"):
        raise ValueError(f"source={source!r}: {kind} needs a {'NAME' if kind == 'tfds' else 'PATH'}, "
                         f"e.g. {kind}:{'imagenette' if kind == 'tfds' else '/data/' + kind}.")
    raise ValueError(f"source={source!r} is not known: accepted {', '.join(SOURCES)}.")


def default_data_dir() -> Path:
    return Path(os.environ.get("EFFNET_DATA_DIR") or Path.home() / ".cache" / "effnet-kit")


def default_shapes_dir() -> Path:
    p = DEFAULT_SHAPES
    return default_data_dir() / (f"shapes-{p['image_size']}px-{p['classes']}c-{p['train']}-"
                                 f"{p['validation']}-seed{p['seed']}")


def ensure_default_shapes(progress: bool = True) -> Path:
    """The default shapes set, generated once (about 20 s) and reused."""
    from .shapes import make_shapes

    return make_shapes(default_shapes_dir(), progress=progress, **DEFAULT_SHAPES)


def make_dataset(source: str = "shapes", split: str = "train", image_size: int = 224,
                 batch_size: int = 32, *, training: bool | None = None,
                 train_with_valid_preprocessing: bool = False, crop_ratio: float = CROP_RATIO,
                 crop_area_range: tuple[float, float] = AREA_RANGE,
                 mixup_alpha: float = 0.0, cutmix_lambda: float = 1.0, label_smoothing: float = 0.0,
                 one_hot: bool | None = None, shuffle: bool | None = None, shuffle_buffer: int = 10000,
                 repeat: bool = False, drop_remainder: bool | None = None, seed: int | None = None,
                 cache: bool = False, skip_corrupt: bool = False, num_classes: int | None = None,
                 label_offset: int = tfrecords.LABEL_OFFSET, shard: tuple[int, int] | None = None,
                 tfds_data_dir: str | None = None, tfds_download: bool = False,
                 progress: bool = True) -> Data:
    """A batched ``tf.data`` pipeline of ``(uint8 images [B, S, S, 3], labels)``.

    Args:
        source: see the module docstring (``effnet data --help`` lists them too).
        split: ``"train"`` or ``"validation"``.
        training: augment (random crop + flip) and shuffle; default: ``split == "train"``.
        train_with_valid_preprocessing: training order and mixing, but the
            validation transform (the resolution fine-tuning step uses it).
        crop_ratio: validation keeps this fraction of the short side (224/256).
        crop_area_range: the training crop's share of the image area (the paper's
            0.05-1.0; small single-object images may want a larger minimum).
        mixup_alpha, cutmix_lambda, label_smoothing: off by default (0, 1, 0);
            any of them makes the labels soft ``float32 [B, C]``.
        one_hot: force soft (``True``) labels; otherwise int32 ``[B]`` labels.
        drop_remainder: default: ``training``.
        seed: fixes shuffling, crops, flips and mixing; None: fresh each run.
        cache: keep the encoded files in memory after the first epoch.
        skip_corrupt: skip truncated or non-image files and count them
            (:meth:`Data.skipped`) instead of stopping with an error that names the
            file; files that only fail deeper in the decoder are skipped with a
            logged warning.
        num_classes: for ``imagenet:`` without a ``labels.txt`` (default 1000) and synthetic.
        label_offset: subtracted from TFRecord labels (ImageNet's scripts write 1-based ones).
        shard: ``(count, index)``: this worker's share of the files (multi-worker training).
    """
    kind, argument = parse_source(source)
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: accepted {', '.join(SPLITS)}.")
    for label, value in (("image_size", image_size), ("batch_size", batch_size)):
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{label}={value!r}: it must be an integer >= 1.")
    validate_mixing(mixup_alpha, cutmix_lambda)
    training = split == "train" if training is None else training
    shuffle = training if shuffle is None else shuffle
    drop_remainder = training if drop_remainder is None else drop_remainder
    soft = bool(one_hot) or mixup_alpha > 0 or cutmix_lambda < 1 or label_smoothing > 0
    mixing = dict(mixup_alpha=mixup_alpha, cutmix_lambda=cutmix_lambda, label_smoothing=label_smoothing)

    if kind.startswith("synthetic"):
        from .synthetic import synthetic_dataset

        classes = [f"class_{i}" for i in range(num_classes or SYNTHETIC_CLASSES)]
        dataset = synthetic_dataset(image_size, batch_size, len(classes), on_device=kind.endswith("device"),
                                    soft=soft, seed=seed)
        return Data(dataset, source, split, classes, image_size, batch_size, training,
                    on_device=kind.endswith("device"), drop_remainder=True)

    if kind == "shapes":
        root = ensure_default_shapes(progress) if argument is None else _shapes_root(argument)
        kind, argument = "folder", str(root)
    if kind == "folder":
        records, classes, files = _folder_records(argument, split)
    elif kind == "imagenet":
        records, classes, files = _tfrecord_records(argument, split, num_classes, label_offset,
                                                   shuffle, seed, shard)
    else:
        records, classes, files = _tfds_records(argument, split, tfds_data_dir, tfds_download)
    count = len(files) if kind == "folder" else None
    if kind == "tfds":
        count, files = files, []
    if kind == "folder":
        if shard is not None:
            records = records.shard(*shard)
            count = len(range(shard[1], count, shard[0]))
        if shuffle:
            # Shuffle the (small) list of file names, not decoded images: a full shuffle
            # for the price of a few strings.
            records = records.shuffle(count, seed=seed, reshuffle_each_iteration=True)
        records = records.map(_read_file, num_parallel_calls=tf.data.AUTOTUNE)
    elif shuffle:
        records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if cache:
        records = records.cache()
    if repeat:
        records = records.repeat()

    augment = training and not train_with_valid_preprocessing
    skipped = tf.Variable(0, dtype=tf.int64, trainable=False) if skip_corrupt else None
    if not 0 < crop_area_range[0] <= crop_area_range[1] <= 1:
        raise ValueError(f"crop_area_range={crop_area_range!r}: expected 0 < low <= high <= 1.")
    images = _decoded(records, image_size, augment, crop_ratio, seed, skip_corrupt, skipped,
                      tuple(crop_area_range))
    batched = images.batch(batch_size, drop_remainder=drop_remainder)
    if soft:
        batched = _mixed(batched, len(classes), seed, mixing)
    else:
        batched = batched.map(lambda image, label: (image, tf.cast(label, tf.int32)))
    dataset = batched.prefetch(tf.data.AUTOTUNE)
    return Data(dataset, source, split, classes, image_size, batch_size, training,
                num_examples=count, drop_remainder=drop_remainder, files=files,
                file_kind="tfrecord" if kind == "imagenet" else "images",
                _skipped=skipped)


def _shapes_root(path) -> Path:
    from .shapes import read_metadata

    read_metadata(path)  # a clear error when PATH is not a generated shapes set
    return Path(path)


def _folder_records(root, split):
    listing = folders.list_images(root, split)
    try:
        other = folders.list_images(root, "validation" if split == "train" else "train")
    except FileNotFoundError:
        other = None  # a folder with one split only is fine
    if other is not None:
        train, valid = (listing, other) if split == "train" else (other, listing)
        folders.check_same_classes(train.class_names, valid.class_names, root)
    records = tf.data.Dataset.from_tensor_slices((listing.files, listing.labels))
    return records, listing.class_names, listing.files


def _read_file(path, label):
    return tf.io.read_file(path), tf.cast(label, tf.int64), tf.constant(WHOLE_IMAGE), path


def _tfrecord_records(root, split, num_classes, label_offset, shuffle, seed, shard):
    shards = tfrecords.shard_files(root, split)
    names = tfrecords.read_labels(root)
    if names is None:
        names = [f"class_{i}" for i in range(num_classes or 1000)]
    elif num_classes is not None and num_classes != len(names):
        raise ValueError(f"num_classes={num_classes} but {root}/{tfrecords.LABELS_FILE} lists "
                         f"{len(names)} classes.")
    limit = len(names)
    files = tf.data.Dataset.from_tensor_slices([str(s) for s in shards])
    if shard is not None:
        files = files.shard(*shard)
    if shuffle:
        files = files.shuffle(len(shards), seed=seed, reshuffle_each_iteration=True)

    def records_of(shard_path):
        def checked(record):
            encoded, label, boxes, name = tfrecords.parse_example(record)
            label = label - label_offset
            ok = (label >= 0) & (label < limit)
            message = ["label (after subtracting label_offset) outside [0, num_classes): label",
                       label, "num_classes", limit, "record", name, "shard", shard_path]
            with tf.control_dependencies([tf.debugging.Assert(ok, message, summarize=3)]):
                return tf.identity(encoded), label, boxes, tf.strings.join([shard_path, ":", name])

        return tf.data.TFRecordDataset(shard_path).map(checked)

    records = files.interleave(records_of, cycle_length=min(8, len(shards)),
                               num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return records, names, [str(s) for s in shards]


def _tfds_records(name, split, data_dir, download):
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ImportError(f"source 'tfds:{name}' needs tensorflow-datasets: "
                          f"pip install tensorflow-datasets (then the data set itself, see below)") from None
    builder = tfds.builder(name, data_dir=data_dir)
    if download:
        builder.download_and_prepare()
    try:
        splits = builder.info.splits
        tfds_split = split if split in splits else {"validation": "test"}.get(split, split)
        dataset = builder.as_dataset(split=tfds_split, decoders={"image": tfds.decode.SkipDecoding()})
    except Exception as error:  # tfds raises several types for "not prepared"
        raise FileNotFoundError(
            f"tfds:{name} is not prepared in {builder.data_dir}: with internet, pass "
            f"tfds_download=True (or run `tfds build {name}`); offline, copy the prepared data "
            f"there or pass tfds_data_dir. ({type(error).__name__}: {error})") from None
    names = builder.info.features["label"].names
    count = builder.info.splits[tfds_split].num_examples
    records = dataset.map(lambda item: (item["image"], tf.cast(item["label"], tf.int64), tf.constant(WHOLE_IMAGE),
                                        tf.constant(f"tfds:{name}")))
    return records, names, count


def _decoded(records, image_size, augment, crop_ratio, seed, skip_corrupt, skipped, area_range):
    seeds = tf.data.Dataset.random(seed=seed).batch(2)

    def decode(element, pair):
        encoded, label, boxes, name = element
        if augment:
            image = preprocess_train(encoded, image_size, pair, boxes, area_range)
        else:
            image = preprocess_valid(encoded, image_size, crop_ratio)
        return tf.ensure_shape(image, [image_size, image_size, 3]), label

    if skip_corrupt:
        def check_and_count(element, pair):
            ok = is_complete_image(element[0])
            # Counted here, exactly, where the file is judged; a running difference of
            # two counters would include images still in flight.
            skipped.assign_add(tf.cast(tf.logical_not(ok), tf.int64))
            return element, pair, ok

        pairs = (tf.data.Dataset.zip((records, seeds)).map(check_and_count)
                 .filter(lambda element, pair, ok: ok).map(lambda element, pair, ok: (element, pair)))
        # A file whose markers are intact but whose data is broken fails in the
        # decoder: dropped too, with a logged warning (not counted).
        decoded = pairs.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        return decoded.ignore_errors(log_warning=True)

    def checked_decode(element, pair):
        # One map stage, not two: each stage costs a hand-over per image.
        encoded, label, boxes, name = element
        ok = is_complete_image(encoded)
        message = ["corrupt or truncated image (pass skip_corrupt=True to skip such files):", name]
        with tf.control_dependencies([tf.debugging.Assert(ok, message)]):
            return decode((tf.identity(encoded), label, boxes, name), pair)

    pairs = tf.data.Dataset.zip((records, seeds))
    return pairs.map(checked_decode, num_parallel_calls=tf.data.AUTOTUNE)


def _mixed(batched, num_classes, seed, mixing):
    seeds = tf.data.Dataset.random(seed=None if seed is None else seed + 1).batch(2)

    def mix(batch, pair):
        images, labels = batch
        return mix_batch(images, labels, num_classes, pair, **mixing)

    return tf.data.Dataset.zip((batched, seeds)).map(mix, num_parallel_calls=tf.data.AUTOTUNE)
