"""The paper's image preprocessing, one encoded image at a time, in TensorFlow ops.

Training: a random distorted bounding-box crop (the object covers at least 10%
of it, aspect ratio 0.75-1.33, 5-100% of the image's area, up to 100 attempts as
the reference's ``imagenet_preprocessing.py``), a horizontal flip, and a resize
to S x S. Only the crop window of a JPEG is decoded (``decode_and_crop_jpeg``),
which is why the training path picks its window from the encoded image's shape
first. Validation, as the reference: resize the short side to S * 256/224
(aspect kept), then crop the centre S x S (``resize_first=False``: crop the same
window first, then resize it to S, which decodes and resizes fewer pixels and
differs only by interpolation).

Images leave as uint8 in [0, 255]: the model normalises them itself
(:class:`effnet_lib.models.image_normalization.ImageNormalization`). Randomness is stateless
and comes from a per-image ``seed`` (a pair of int64), so that a pipeline with a
seed gives the same images on every run.
"""

from __future__ import annotations

import tensorflow as tf

CROP_RATIO = 224 / 256  # validation keeps this fraction of the short side
MIN_OBJECT_COVERED = 0.1
ASPECT_RATIO_RANGE = (0.75, 4 / 3)
AREA_RANGE = (0.05, 1.0)
MAX_ATTEMPTS = 100  # tries of the distorted crop before falling back to the whole image
# [ymin, xmin, ymax, xmax], one box. A plain list: a tf.constant here would start
# TensorFlow's runtime at import, before a multi-worker strategy can configure it.
WHOLE_IMAGE = [[[0.0, 0.0, 1.0, 1.0]]]


def image_shape(encoded: tf.Tensor) -> tf.Tensor:
    """Height, width (and channels) of an encoded JPEG or PNG without decoding its pixels."""
    def png_shape():
        # A PNG's IHDR chunk holds width then height as big-endian uint32 at bytes 16-24.
        header = tf.io.decode_raw(tf.strings.substr(encoded, 16, 8), tf.uint8)
        big_endian = tf.cast(header, tf.int32) * tf.constant([1 << 24, 1 << 16, 1 << 8, 1] * 2)
        width = tf.reduce_sum(big_endian[:4])
        height = tf.reduce_sum(big_endian[4:])
        return tf.stack([height, width, 3])

    return tf.cond(tf.io.is_jpeg(encoded), lambda: tf.image.extract_jpeg_shape(encoded), png_shape)


def is_complete_image(encoded: tf.Tensor) -> tf.Tensor:
    """Whether the bytes look like a whole JPEG or PNG (start and end markers present).

    Catches truncated downloads and files that are not images at all, cheaply, in
    the graph, so that the pipeline can name the file or skip it.
    """
    # The usual case in a few ops: the file ends with its end marker.
    last = tf.strings.substr(encoded, tf.maximum(tf.strings.length(encoded) - 12, 0), 12)
    jpeg = tf.io.is_jpeg(encoded)
    png = tf.equal(tf.strings.substr(encoded, 0, 8), b"\x89PNG\r\n\x1a\n")
    plainly_complete = ((jpeg & tf.equal(tf.strings.substr(last, -2, 2), b"\xff\xd9"))
                        | (png & tf.equal(tf.strings.substr(last, 4, 4), b"IEND")))
    return tf.cond(plainly_complete, lambda: tf.constant(True),
                   lambda: _has_end_marker(encoded, jpeg, png))


def _has_end_marker(encoded, jpeg, png):
    # Some writers append bytes after the end marker: look for it in the last KiB.
    tail = tf.io.decode_raw(tf.strings.substr(encoded, tf.maximum(tf.strings.length(encoded) - 1024, 0),
                                              1024), tf.uint8)
    tail = tf.cast(tail, tf.int32)

    def contains(pattern):
        n = len(pattern)
        length = tf.shape(tail)[0] - n + 1
        hits = tf.ones(tf.maximum(length, 0), tf.bool)
        for offset, byte in enumerate(pattern):
            hits = hits & tf.equal(tail[offset:offset + tf.maximum(length, 0)], byte)
        return tf.reduce_any(hits)

    return (jpeg & contains((0xFF, 0xD9))) | (png & contains(tuple(b"IEND")))


def _decode_window(encoded, offset_height, offset_width, height, width):
    def jpeg():
        window = tf.stack([offset_height, offset_width, height, width])
        return tf.image.decode_and_crop_jpeg(encoded, window, channels=3)

    def other():
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        return tf.image.crop_to_bounding_box(image, offset_height, offset_width, height, width)

    return tf.cond(tf.io.is_jpeg(encoded), jpeg, other)


def _resize_uint8(image, size):
    # Cast first: TensorFlow's bilinear kernel converts every uint8 it reads, and on
    # this project's 2-core machine resizing from float was 20-30% faster end to end
    # (`effnet data bench`; see docs/data.md, input-pipeline speed).
    resized = tf.image.resize(tf.cast(image, tf.float32), [size, size], method="bilinear",
                              antialias=False)
    # Bilinear weights are convex, so values stay in [0, 255]: rounding is all that is needed.
    return tf.cast(tf.round(resized), tf.uint8)


def preprocess_train(encoded: tf.Tensor, image_size: int, seed: tf.Tensor,
                     bbox: tf.Tensor | None = None, area_range=AREA_RANGE) -> tf.Tensor:
    """Random distorted crop + flip + resize: ``uint8 [S, S, 3]``.

    Args:
        encoded: the JPEG or PNG bytes.
        image_size: output height and width S.
        seed: int64 pair; the same seed gives the same crop and flip.
        bbox: object boxes ``[1, N, 4]`` (ImageNet's TFRecords carry them); the
            whole image when absent.
        area_range: the crop's share of the image's area (the paper's 0.05-1.0).
    """
    shape = image_shape(encoded)
    boxes = tf.constant(WHOLE_IMAGE) if bbox is None else bbox
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, bounding_boxes=boxes, seed=crop_seed, min_object_covered=MIN_OBJECT_COVERED,
        aspect_ratio_range=ASPECT_RATIO_RANGE, area_range=area_range, max_attempts=MAX_ATTEMPTS,
        use_image_if_no_bounding_boxes=True)
    image = _decode_window(encoded, begin[0], begin[1], size[0], size[1])
    image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
    return _resize_uint8(image, image_size)


def preprocess_valid(encoded: tf.Tensor, image_size: int, crop_ratio: float = CROP_RATIO,
                     resize_first: bool = True) -> tf.Tensor:
    """The centre ``crop_ratio`` of the short side at ``image_size``: ``uint8 [S, S, 3]``.

    ``resize_first`` (the reference's order): resize the short side to
    ``int(S / crop_ratio)`` keeping the aspect ratio, then crop the centre S x S.
    Otherwise crop that window first and resize it to S: the same pixels up to
    interpolation, with fewer decoded and resized.
    """
    if not 0 < crop_ratio <= 1:
        raise ValueError(f"crop_ratio={crop_ratio!r}: it must be in (0, 1]; the paper's is 224/256.")
    if resize_first:
        return _resize_then_crop(encoded, image_size, crop_ratio)
    shape = image_shape(encoded)
    height, width = shape[0], shape[1]
    side = tf.cast(tf.round(tf.cast(tf.minimum(height, width), tf.float32) * crop_ratio), tf.int32)
    side = tf.maximum(side, 1)
    image = _decode_window(encoded, (height - side) // 2, (width - side) // 2, side, side)
    return _resize_uint8(image, image_size)


def _resize_then_crop(encoded, image_size: int, crop_ratio: float):
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    short_side = float(int(image_size / crop_ratio))  # the reference's int(S * 256 / 224)
    scale = short_side / tf.reduce_min(shape)
    new_size = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), image_size)
    resized = tf.image.resize(tf.cast(image, tf.float32), new_size, method="bilinear")
    top, left = (new_size[0] - image_size) // 2, (new_size[1] - image_size) // 2
    crop = resized[top:top + image_size, left:left + image_size]
    # Bilinear weights are convex, so values stay in [0, 255]: rounding is all that is needed.
    return tf.cast(tf.round(crop), tf.uint8)
