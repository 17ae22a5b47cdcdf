"""Input data: the embedded shapes set, image folders, ImageNet TFRecords, TFDS and
synthetic images, with the paper's preprocessing and augmentation.

``make_dataset(source, split, image_size, batch_size, ...)`` is the entry point;
see :mod:`effnet_lib.data.pipeline` for the sources.
"""

from .pipeline import SOURCES, Data, make_dataset, parse_source

__all__ = ["SOURCES", "Data", "make_dataset", "parse_source"]
