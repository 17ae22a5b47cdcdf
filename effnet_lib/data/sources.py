"""Where images come from: one reader per kind of source, chosen from :data:`SOURCES`.

==========================  ==================================================================
``shapes``                  the embedded default: generated on first use (see ``shapes.py``)
                            into ``$EFFNET_DATA_DIR`` (default ``~/.cache/effnet-kit``)
``shapes:PATH``             a shapes set made by ``effnet data make-shapes --output-dir PATH``
``folder:PATH``             ``PATH/{train,validation|val}/<class>/*.jpg|png``
``imagenet:PATH``           ImageNet-layout TFRecords ``PATH/train-00000-of-01024`` ...
``tfds:NAME``               a tensorflow-datasets data set already on disk (or downloadable)
``synthetic-host``          random images made once by tf.data on the host (the IPU kit's
                            ``--synthetic-data cpu``)
``synthetic-device``        random images made inside the compiled step; the data set only
                            carries labels (``--synthetic-data ipu``)
==========================  ==================================================================

A reader turns a source into :class:`Records`: a data set of ``(encoded image,
label, object boxes, name)`` elements and what is known about it. Decoding,
cropping and batching are the same for all of them (:mod:`.pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import tensorflow as tf

from ..common.paths import data_dir
from . import folders, tfrecords
from .preprocessing import WHOLE_IMAGE

DEFAULT_SHAPES = dict(image_size=128, train=10000, validation=2000, classes=10, seed=0)


@dataclass
class Records:
    """Encoded images of one split, before decoding."""

    dataset: tf.data.Dataset  # (encoded, label, boxes, name) elements
    class_names: list[str]
    count: int | None  # images in the split; None when unknown before reading
    files: list[str] = field(default_factory=list)  # image files or shards (for benchmarks)
    file_kind: str = "images"  # or "tfrecord"
    shuffled: bool = False  # the reader shuffled already (file names, cheaply)


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may need besides the split; each reads the fields it uses."""

    shuffle: bool = False
    seed: int | None = None
    shard: tuple[int, int] | None = None  # (count, index): this worker's share of the files
    num_classes: int | None = None
    label_offset: int = tfrecords.LABEL_OFFSET
    tfds_data_dir: str | None = None
    tfds_download: bool = False
    progress: bool = True


@dataclass(frozen=True)
class Source:
    kind: str
    argument: str | None  # "PATH", "NAME" or None: what follows the colon
    read: Callable | None  # (argument, split, ReadOptions) -> Records; None for synthetic ones
    argument_optional: bool = False

    @property
    def spellings(self) -> list[str]:
        with_argument = [f"{self.kind}:{self.argument}"] if self.argument else []
        return ([self.kind] if self.argument_optional or not self.argument else []) + with_argument


def default_shapes_dir() -> Path:
    p = DEFAULT_SHAPES
    return data_dir() / (f"shapes-{p['image_size']}px-{p['classes']}c-{p['train']}-"
                         f"{p['validation']}-seed{p['seed']}")


def ensure_default_shapes(progress: bool = True) -> Path:
    """The default shapes set, generated once (about 20 s) and reused."""
    from .shapes import make_shapes

    return make_shapes(default_shapes_dir(), progress=progress, **DEFAULT_SHAPES)


def read_folder(root, split: str, options: ReadOptions) -> Records:
    listing = folders.list_images(root, split)
    try:
        other = folders.list_images(root, "validation" if split == "train" else "train")
    except FileNotFoundError:
        other = None  # a folder with one split only is fine
    if other is not None:
        train, valid = (listing, other) if split == "train" else (other, listing)
        folders.check_same_classes(train.class_names, valid.class_names, root)
    records = tf.data.Dataset.from_tensor_slices((listing.files, listing.labels))
    count = len(listing.files)
    if options.shard is not None:
        records = records.shard(*options.shard)
        count = len(range(options.shard[1], count, options.shard[0]))
    if options.shuffle:
        # Shuffle the (small) list of file names, not decoded images: a full shuffle
        # for the price of a few strings.
        records = records.shuffle(count, seed=options.seed, reshuffle_each_iteration=True)
    records = records.map(_read_file, num_parallel_calls=tf.data.AUTOTUNE)
    return Records(records, listing.class_names, count, listing.files, shuffled=True)


def _read_file(path, label):
    return tf.io.read_file(path), tf.cast(label, tf.int64), tf.constant(WHOLE_IMAGE), path


def read_shapes(path, split: str, options: ReadOptions) -> Records:
    if path is None:
        path = ensure_default_shapes(options.progress)
    else:
        from .shapes import read_metadata

        read_metadata(path)  # a clear error when PATH is not a generated shapes set
    return read_folder(path, split, options)


def read_imagenet(root, split: str, options: ReadOptions) -> Records:
    shards = tfrecords.shard_files(root, split)
    names = tfrecords.read_labels(root)
    if names is None:
        names = [f"class_{i}" for i in range(options.num_classes or 1000)]
    elif options.num_classes is not None and options.num_classes != len(names):
        raise ValueError(f"num_classes={options.num_classes} but {root}/{tfrecords.LABELS_FILE} "
                         f"lists {len(names)} classes.")
    files = tf.data.Dataset.from_tensor_slices([str(s) for s in shards])
    if options.shard is not None:
        files = files.shard(*options.shard)
    if options.shuffle:
        files = files.shuffle(len(shards), seed=options.seed, reshuffle_each_iteration=True)
    read = tfrecords.checked_records(len(names), options.label_offset)
    records = files.interleave(read, cycle_length=min(8, len(shards)),
                               num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return Records(records, names, None, [str(s) for s in shards], file_kind="tfrecord")


def read_tfds(name, split: str, options: ReadOptions) -> Records:
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ImportError(f"source 'tfds:{name}' needs tensorflow-datasets: pip install "
                          f"tensorflow-datasets (then the data set itself, see below)") from None
    builder = tfds.builder(name, data_dir=options.tfds_data_dir)
    if options.tfds_download:
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
    records = dataset.map(lambda item: (item["image"], tf.cast(item["label"], tf.int64),
                                        tf.constant(WHOLE_IMAGE), tf.constant(f"tfds:{name}")))
    return Records(records, names, builder.info.splits[tfds_split].num_examples)


SOURCES = {source.kind: source for source in (
    Source("shapes", "PATH", read_shapes, argument_optional=True),
    Source("folder", "PATH", read_folder),
    Source("imagenet", "PATH", read_imagenet),
    Source("tfds", "NAME", read_tfds),
    Source("synthetic-host", None, None),
    Source("synthetic-device", None, None),
)}
SOURCE_NAMES = tuple(name for source in SOURCES.values() for name in source.spellings)


def parse_source(source: str) -> tuple[str, str | None]:
    """``"folder:/data/x"`` -> ``("folder", "/data/x")``; a clear error for anything else."""
    if not isinstance(source, str) or not source:
        raise ValueError(f"source={source!r}: accepted {', '.join(SOURCE_NAMES)}.")
    kind, _, argument = source.partition(":")
    if kind == "synthetic":
        raise ValueError("source='synthetic': say where the images are made: synthetic-host "
                         "(tf.data, on the host) or synthetic-device (inside the step).")
    if kind not in SOURCES:
        raise ValueError(f"source={source!r} is not known: accepted {', '.join(SOURCE_NAMES)}.")
    entry = SOURCES[kind]
    if argument and entry.argument is None:
        raise ValueError(f"source={source!r}: {kind} takes no argument after the colon.")
    if not argument and entry.argument and not entry.argument_optional:
        example = "imagenette" if entry.argument == "NAME" else f"/data/{kind}"
        raise ValueError(f"source={source!r}: {kind} needs a {entry.argument}, e.g. "
                         f"{kind}:{example}.")
    return kind, argument or None
