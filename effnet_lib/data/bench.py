"""How fast the input pipeline is, against a bare decode loop over the same files.

The full pipeline (read, check, random crop, flip, resize, batch, prefetch) can
only be as fast as decoding; the ratio says how much of the decode rate the
augmentation and batching keep. Both loops run with the same parallelism
(``tf.data.AUTOTUNE``) on the same repeated files and are timed after a warm-up.

The two loops take turns, a fresh iterator each time, for a few rounds, and the
ratio is the median of the rounds' ratios: the speed of a shared 2-core machine
drifts by 10-30% over minutes, which a single pipeline-then-decode pass would
read as a difference between the loops.
"""

from __future__ import annotations

import statistics
import time

import tensorflow as tf

from . import tfrecords
from .pipeline import make_dataset
from .preprocessing import image_shape

GOAL = 0.8  # the pipeline should keep this share of the bare decode rate (issue 4)


def _rate(dataset, images: int, per_element: int, warmup: int) -> float:
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    steps = max(1, images // per_element)
    start = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    return steps * per_element / (time.perf_counter() - start)


def bare_decode(data, batch_size: int) -> tf.data.Dataset:
    """Read and fully decode the same files as ``data``, nothing else, in batches of sizes."""
    if not data.files:
        raise ValueError(f"{data.source}: a bare decode needs files (folders, shapes, imagenet).")
    if data.file_kind == "tfrecord":
        encoded = tf.data.TFRecordDataset(data.files, num_parallel_reads=tf.data.AUTOTUNE).map(
            lambda r: tfrecords.parse_example(r)[0], num_parallel_calls=tf.data.AUTOTUNE)
    else:
        encoded = tf.data.Dataset.from_tensor_slices(data.files).map(
            tf.io.read_file, num_parallel_calls=tf.data.AUTOTUNE)

    def decode(image_bytes):
        # The size keeps the decoder's output alive while letting images of any shape batch.
        return tf.size(tf.io.decode_image(image_bytes, channels=3, expand_animations=False))

    return (encoded.repeat().map(decode, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size).prefetch(tf.data.AUTOTUNE))


def source_size(data, sample: int = 32) -> tuple[int, int] | None:
    """Median height and width of the source images (a sample), read from their headers."""
    if not data.files:
        return None
    if data.file_kind == "tfrecord":
        encoded = (tf.data.TFRecordDataset(data.files[:1]).take(sample)
                   .map(lambda r: tfrecords.parse_example(r)[0]))
    else:
        step = max(1, len(data.files) // sample)
        encoded = tf.data.Dataset.from_tensor_slices(data.files[::step][:sample]).map(tf.io.read_file)
    shapes = [image_shape(e).numpy()[:2] for e in encoded]
    if not shapes:
        return None
    return (int(statistics.median(s[0] for s in shapes)), int(statistics.median(s[1] for s in shapes)))


def bench(source: str = "shapes", image_size: int = 224, batch_size: int = 64, images: int = 3000,
          rounds: int = 3, warmup: int = 3, cache: bool = False, progress: bool = True) -> dict:
    """Images/s of the training pipeline and of a bare decode loop, and their ratio.

    Returns medians over ``rounds`` (``pipeline_images_per_s``,
    ``bare_decode_images_per_s``, ``ratio``), each round's figures under
    ``rounds_measured``, and the sources' median size (``source_size``).
    """
    if not (isinstance(images, int) and images >= batch_size):
        raise ValueError(f"images={images!r}: time at least one batch ({batch_size}).")
    if not (isinstance(rounds, int) and rounds >= 1):
        raise ValueError(f"rounds={rounds!r}: it must be an integer >= 1.")
    data = make_dataset(source, "train", image_size, batch_size, repeat=True, seed=0, cache=cache,
                        progress=progress)
    decode = bare_decode(data, batch_size) if data.files else None
    measured = []
    bar = _progress(rounds, progress, source)
    for _ in range(rounds):
        row = dict(pipeline=_rate(data.dataset, images, batch_size, warmup))
        if decode is not None:
            row["bare_decode"] = _rate(decode, images, batch_size, warmup)
            row["ratio"] = row["pipeline"] / row["bare_decode"]
        measured.append(row)
        bar.update(1)
    bar.close()
    result = dict(source=source, image_size=image_size, batch_size=batch_size, images=images,
                  rounds=rounds, source_size=source_size(data), rounds_measured=measured,
                  pipeline_images_per_s=statistics.median(r["pipeline"] for r in measured))
    if decode is not None:
        result.update(bare_decode_images_per_s=statistics.median(r["bare_decode"] for r in measured),
                      ratio=statistics.median(r["ratio"] for r in measured))
    return result


def explain(result: dict) -> str:
    """One line on what bounds the pipeline, for the command's report."""
    if "ratio" not in result:
        return "no files to decode: the pipeline's rate alone is reported."
    if result["ratio"] >= GOAL:
        return f"meets the goal: the pipeline keeps >= {GOAL:.0%} of the bare decode rate."
    size = result.get("source_size")
    if size and max(size) < result["image_size"]:
        return (f"below the {GOAL:.0%} goal: the sources ({size[0]}x{size[1]} px) are smaller than the "
                f"output ({result['image_size']} px), so resizing up, not decoding, bounds the pipeline.")
    return f"below the {GOAL:.0%} goal: augmentation and resizing cost more than decoding here."


def _progress(total, enabled, source):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"bench {source}", unit="round", disable=not enabled, leave=False)
