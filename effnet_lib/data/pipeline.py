"""``make_dataset``: one entry point from a source name to a batched tf.data pipeline.

Every encoded source (:mod:`.sources`) goes through the same steps: list, (shard),
shuffle, read, check, decode + crop + resize (parallel), batch, mix, prefetch.
Synthetic sources skip the decoding (:mod:`.synthetic`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import tensorflow as tf

from . import tfrecords
from .augmentation import Augmentation
from .mixing import mix_batch
from .preprocessing import is_complete_image, preprocess_train, preprocess_valid
from .sources import SOURCES, ReadOptions, parse_source

# The functions mapped over data sets branch with tf.cond, never with Python's `if` on a
# tensor, so AutoGraph is left out (do_not_convert): converting them and everything they call
# made a new process's first training data set take 3.3-3.8 s instead of 0.75 s (2 cores).
plain_graph = tf.autograph.experimental.do_not_convert

SPLITS = ("train", "validation")
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
    skipped_counter: tf.Variable | None = field(default=None, repr=False)

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
        return 0 if self.skipped_counter is None else int(self.skipped_counter.numpy())

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


def make_dataset(source: str = "shapes", split: str = "train", image_size: int = 224,
                 batch_size: int = 32, *, augmentation: Augmentation | None = None,
                 training: bool | None = None, one_hot: bool | None = None,
                 shuffle: bool | None = None, shuffle_buffer: int = 10000, repeat: bool = False,
                 drop_remainder: bool | None = None, seed: int | None = None, cache: bool = False,
                 skip_corrupt: bool = False, num_classes: int | None = None,
                 label_offset: int = tfrecords.LABEL_OFFSET, shard: tuple[int, int] | None = None,
                 tfds_data_dir: str | None = None, tfds_download: bool = False,
                 progress: bool = True, start_batch: int = 0) -> Data:
    """A batched ``tf.data`` pipeline of ``(uint8 images [B, S, S, 3], labels)``.

    Args:
        source: see :mod:`effnet_lib.data.sources` (``effnet data --help`` lists them too).
        split: ``"train"`` or ``"validation"``.
        augmentation: crops and label mixing (:class:`Augmentation`); default: the
            paper's crops, no mixing. Soft labels (``float32 [B, C]``) whenever it mixes.
        training: augment (random crop + flip), shuffle and (``drop_remainder``'s default)
            drop a last partial batch; default: ``split == "train"``.
        one_hot: force soft (``True``) labels; otherwise int32 ``[B]`` labels.
        seed: fixes shuffling, crops, flips and mixing; None: fresh each run.
        cache: keep the encoded files in memory after the first epoch.
        skip_corrupt: skip truncated or non-image files and count them (:meth:`Data.skipped`),
            not stop naming the file (those failing deeper in the decoder: a logged warning).
        num_classes: for ``imagenet:`` without a ``labels.txt`` (default 1000) and synthetic.
        label_offset: subtracted from TFRecord labels (ImageNet's scripts write 1-based ones).
        shard: ``(count, index)``: this worker's share of the files (multi-worker training).
        start_batch: begin there in the seeded stream (a resumed run's data goes on exactly;
            random draws are keyed to each image's place, so skipped ones are not decoded).
    """
    kind, argument = parse_source(source)
    _check_request(split, image_size, batch_size, start_batch)
    augmentation = augmentation or Augmentation()
    training = split == "train" if training is None else training
    shuffle = training if shuffle is None else shuffle
    drop_remainder = training if drop_remainder is None else drop_remainder
    soft = bool(one_hot) or augmentation.soft_labels
    if SOURCES[kind].read is None:
        return _synthetic(source, kind, split, image_size, batch_size, training, num_classes,
                          soft, seed)
    options = ReadOptions(shuffle=shuffle, seed=seed, shard=shard, num_classes=num_classes,
                          label_offset=label_offset, tfds_data_dir=tfds_data_dir,
                          tfds_download=tfds_download, progress=progress)
    found = SOURCES[kind].read(argument, split, options)
    records = found.dataset.cache() if cache else found.dataset
    if shuffle and not found.shuffled:
        records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    records = records.repeat() if repeat else records
    skipped = tf.Variable(0, dtype=tf.int64, trainable=False) if skip_corrupt else None
    augment = training and not augmentation.valid_preprocessing
    images = _decoded(records, image_size, augment, augmentation, seed, skipped,
                      start_batch * batch_size)
    batched = images.batch(batch_size, drop_remainder=drop_remainder)
    if soft:
        batched = _mixed(batched, len(found.class_names), seed, augmentation, start_batch)
    else:
        batched = batched.map(plain_graph(lambda image, label: (image, tf.cast(label, tf.int32))))
    return Data(batched.prefetch(tf.data.AUTOTUNE), source, split, found.class_names,
                image_size, batch_size, training, num_examples=found.count,
                drop_remainder=drop_remainder, files=found.files, file_kind=found.file_kind,
                skipped_counter=skipped)


def _check_request(split, image_size, batch_size, start_batch) -> None:
    if not (isinstance(start_batch, int) and start_batch >= 0):
        raise ValueError(f"start_batch={start_batch!r}: it must be an integer >= 0.")
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: accepted {', '.join(SPLITS)}.")
    for label, value in (("image_size", image_size), ("batch_size", batch_size)):
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{label}={value!r}: it must be an integer >= 1.")


def _synthetic(source, kind, split, image_size, batch_size, training, num_classes, soft, seed):
    from .synthetic import synthetic_dataset

    on_device = kind.endswith("device")
    classes = [f"class_{i}" for i in range(num_classes or SYNTHETIC_CLASSES)]
    dataset = synthetic_dataset(image_size, batch_size, len(classes), on_device=on_device,
                                soft=soft, seed=seed)
    return Data(dataset, source, split, classes, image_size, batch_size, training,
                on_device=on_device, drop_remainder=True)


def _decoded(records, image_size, augment, augmentation: Augmentation, seed, skipped,
             start_image: int = 0):
    seeds = tf.data.Dataset.random(seed=seed).batch(2)

    @plain_graph
    def decode(element, pair):
        encoded, label, boxes, name = element
        if augment:
            image = preprocess_train(encoded, image_size, pair, boxes, augmentation.crop_area_range)
        else:
            image = preprocess_valid(encoded, image_size, augmentation.crop_ratio,
                                     augmentation.valid_resize_first)
        return tf.ensure_shape(image, [image_size, image_size, 3]), label

    if skipped is not None:
        @plain_graph
        def check_and_count(element, pair):
            ok = is_complete_image(element[0])
            # Counted here, exactly, where the file is judged; a running difference of
            # two counters would include images still in flight.
            skipped.assign_add(tf.cast(tf.logical_not(ok), tf.int64))
            return element, pair, ok

        @plain_graph
        def complete(element, pair, ok):
            return ok

        @plain_graph
        def without_flag(element, pair, ok):
            return element, pair

        pairs = (tf.data.Dataset.zip((records, seeds)).map(check_and_count)
                 .filter(complete).map(without_flag).skip(start_image))
        # A file whose markers are intact but whose data is broken fails in the
        # decoder: dropped too, with a logged warning (not counted).
        decoded = pairs.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        return decoded.ignore_errors(log_warning=True)

    @plain_graph
    def checked_decode(element, pair):
        # One map stage, not two: each stage costs a hand-over per image.
        encoded, label, boxes, name = element
        ok = is_complete_image(encoded)
        message = ["corrupt or truncated image (pass skip_corrupt=True to skip such files):", name]
        with tf.control_dependencies([tf.debugging.Assert(ok, message)]):
            return decode((tf.identity(encoded), label, boxes, name), pair)

    pairs = tf.data.Dataset.zip((records, seeds)).skip(start_image)  # before decoding: cheap
    return pairs.map(checked_decode, num_parallel_calls=tf.data.AUTOTUNE)


def _mixed(batched, num_classes, seed, augmentation: Augmentation, start_batch: int = 0):
    seeds = tf.data.Dataset.random(seed=None if seed is None else seed + 1).batch(2).skip(start_batch)

    @plain_graph
    def mix(batch, pair):
        images, labels = batch
        return mix_batch(images, labels, num_classes, pair, **augmentation.mixing)

    return tf.data.Dataset.zip((batched, seeds)).map(mix, num_parallel_calls=tf.data.AUTOTUNE)
