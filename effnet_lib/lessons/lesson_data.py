"""The data a notebook trains on, sized for its run budget.

The notebooks take a ``data`` parameter (any source of
:func:`effnet_lib.data.make_dataset`). With the default, ``"shapes"``, a
``smoke`` or ``quick`` budget would spend much of its time generating the full
shapes set (12,000 JPEGs), so :func:`lesson_data` makes a smaller set of the same
kind instead, once, in the data cache (``$EFFNET_DATA_DIR``, default
``~/.cache/effnet-kit``). ``full`` uses the default set; any other source is
used as given, whatever the budget.
"""

from __future__ import annotations

from ..common.paths import data_dir
from .records import check_budget

# Images per split of the small shapes sets; the image size is the caller's.
LESSON_SHAPES = {"smoke": dict(train=160, validation=100), "quick": dict(train=2000, validation=500)}


def lesson_data(data: str = "shapes", budget: str = "quick", image_size: int = 64,
                classes: int = 10, seed: int = 0) -> str:
    """The ``make_dataset`` source a notebook should use for ``data`` at ``budget``."""
    check_budget(budget)
    if data != "shapes" or budget == "full":
        return data
    from ..data.shapes import make_shapes

    counts = LESSON_SHAPES[budget]
    path = data_dir() / (f"lesson-shapes-{image_size}px-{classes}c-{counts['train']}-"
                                 f"{counts['validation']}-seed{seed}")
    make_shapes(path, image_size=image_size, classes=classes, seed=seed, progress=False, **counts)
    return f"shapes:{path}"
