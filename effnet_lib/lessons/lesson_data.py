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

# Images per split of the lessons' shapes sets; the image size is the caller's.
LESSON_SHAPES = {"smoke": dict(train=160, validation=100), "quick": dict(train=2000, validation=500),
                 "full": dict(train=10000, validation=2000)}


def lesson_data(data: str = "shapes", budget: str = "quick", image_size: int = 64,
                classes: int = 10, seed: int = 0, class_set: str = "fine",
                counts: dict | None = None) -> str:
    """The ``make_dataset`` source a notebook should use for ``data`` at ``budget``.

    ``data`` other than ``"shapes"`` is used as given. For ``"shapes"``, a set of the
    ``class_set`` (``"fine"`` or ``"distinct"``, see :mod:`effnet_lib.data.shapes`) with
    the budget's image counts (or ``counts``) is generated once into the data cache; at
    ``full`` with the fine classes and no ``counts``, the default set is used.
    """
    check_budget(budget)
    if data != "shapes":
        return data
    if budget == "full" and class_set == "fine" and counts is None:
        return data
    from ..data.shapes import make_shapes

    counts = counts or LESSON_SHAPES[budget]
    kind = "" if class_set == "fine" else f"{class_set}-"
    path = data_dir() / (f"lesson-shapes-{kind}{image_size}px-{classes}c-{counts['train']}-"
                         f"{counts['validation']}-seed{seed}")
    make_shapes(path, image_size=image_size, classes=classes, seed=seed, progress=False,
                class_set=class_set, **counts)
    return f"shapes:{path}"
