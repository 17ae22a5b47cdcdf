"""Input data: the embedded shapes set, image folders, ImageNet TFRecords, TFDS and
synthetic images, with the paper's preprocessing and augmentation.

``make_dataset(source, split, image_size, batch_size, augmentation=...)`` is the
entry point (:mod:`.pipeline`); :mod:`.sources` reads each kind of source,
:mod:`.preprocessing` crops and resizes, :mod:`.mixing` smooths and mixes labels,
:mod:`.augmentation` holds those options, :mod:`.shapes` generates the embedded
set and :mod:`.bench` times the pipeline.
"""

from .augmentation import Augmentation
from .pipeline import Data, make_dataset
from .sources import SOURCE_NAMES, parse_source

__all__ = ["SOURCE_NAMES", "Augmentation", "Data", "make_dataset", "parse_source"]
