"""The data a notebook trains on, sized for its run profile.

The notebooks take a ``data`` parameter (any source of
:func:`effnet_lib.data.make_dataset`). With the default, ``"shapes"``, a
``smoke`` or ``quick`` run would spend much of its time generating the full
shapes set (12,000 JPEGs), so :func:`lesson_data` makes a smaller set of the same
kind instead, once, in the data cache (``$EFFNET_DATA_DIR``, default
``~/.cache/effnet-kit``). ``full`` uses the default set; any other source is
used as given, whatever the profile.
"""

from __future__ import annotations

from .notebook_results import check_profile

# Images per split of the small shapes sets; the image size is the caller's.
LESSON_SHAPES = {"smoke": dict(train=160, validation=100), "quick": dict(train=2000, validation=500)}


def lesson_data(data: str = "shapes", profile: str = "quick", image_size: int = 64,
                classes: int = 10, seed: int = 0) -> str:
    """The ``make_dataset`` source a notebook should use for ``data`` at ``profile``."""
    check_profile(profile)
    if data != "shapes" or profile == "full":
        return data
    from .data.pipeline import default_data_dir
    from .data.shapes import make_shapes

    counts = LESSON_SHAPES[profile]
    path = default_data_dir() / (f"lesson-shapes-{image_size}px-{classes}c-{counts['train']}-"
                                 f"{counts['validation']}-seed{seed}")
    make_shapes(path, image_size=image_size, classes=classes, seed=seed, progress=False, **counts)
    return f"shapes:{path}"
