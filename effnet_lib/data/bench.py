"""How fast the input pipeline is, against a bare decode loop over the same files.

The full pipeline (read, check, random crop, flip, resize, batch, prefetch) can
only be as fast as decoding; the ratio says how much of the decode rate the
augmentation and batching keep. Both loops run with the same parallelism
(``tf.data.AUTOTUNE``) on the same repeated files and are timed after a warm-up.
"""

from __future__ import annotations

import time

import tensorflow as tf

from . import tfrecords
from .pipeline import make_dataset


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


def bench(source: str = "shapes", image_size: int = 224, batch_size: int = 64, images: int = 3000,
          warmup: int = 3, cache: bool = False, progress: bool = True) -> dict:
    """Images/s of the training pipeline and of a bare decode loop, and their ratio."""
    if not (isinstance(images, int) and images >= batch_size):
        raise ValueError(f"images={images!r}: time at least one batch ({batch_size}).")
    data = make_dataset(source, "train", image_size, batch_size, repeat=True, seed=0, cache=cache,
                        progress=progress)
    pipeline = _rate(data.dataset, images, batch_size, warmup)
    result = dict(source=source, image_size=image_size, batch_size=batch_size, images=images,
                  pipeline_images_per_s=pipeline)
    if data.files:
        decode = _rate(bare_decode(data, batch_size), images, batch_size, warmup)
        result.update(bare_decode_images_per_s=decode, ratio=pipeline / decode)
    return result
