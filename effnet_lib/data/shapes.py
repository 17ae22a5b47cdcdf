"""The "shapes" data set: an embedded, offline, deterministic image-classification set.

The kit generates it itself, so that the whole training path (JPEG files in a
class-folder layout, decoding, cropping, the model, the metrics) runs anywhere
without a download::

    effnet data make-shapes --output-dir DIR   # or make_shapes(DIR, image_size=128)

    DIR/train/<class name>/000000.jpg ...
    DIR/validation/<class name>/000003.jpg ...
    DIR/shapes.json                            # the parameters; see read_metadata()

``shapes.json`` lists the classes in :data:`CLASS_NAMES` order; folder loaders
(:mod:`effnet_lib.data.folders`) number them in sorted folder-name order instead.

Each image holds one large filled shape (the class) on a cluttered background: a
colour gradient with smooth blotches and pixel noise, smaller shapes of other
kinds, dots and strokes, some of which cross the main shape. The shape's size,
position, rotation, aspect ratio and colours vary. The classes (:data:`CLASS_NAMES`)
are told apart by fine detail - a heptagon from an octagon, a circle from a
circle carrying a small dot, a 5-pointed star from a 7-pointed one - so that
resolution matters: at 32 px many of these details are a pixel or two wide.

What it is a proxy for:

* checking that the data pipeline, training loop and evaluation run end to end,
  on real JPEG files, in minutes on a CPU;
* *relative* comparisons on a small budget: one norm against another (batch
  norm against group norm against Proxy Norm), a low training resolution against
  a higher one, a change against its baseline.

What it is NOT a proxy for: ImageNet. It has no natural-image statistics (no
textures of real objects, no photographic lighting, no class hierarchy), few
classes, synthetic clutter and a single centred-ish object. Absolute accuracies
on it say nothing about ImageNet accuracies, and which setting wins here need not
win there; use it to see that things work and in which direction they move.

Every image is drawn from its own random generator seeded with
``(seed, split, index)``, so a set is identical whatever the number of worker
processes, and the same index gives the same scene at every ``image_size``
(the geometry is drawn in relative units; only pixel noise depends on the size).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .shapes_drawing import CLASS_NAMES, MIN_IMAGE_SIZE, render

__all__ = ["CLASS_NAMES", "make_shapes", "read_metadata", "render"]

GENERATOR = "effnet-kit shapes"
VERSION = 1  # bump when the images a given seed produces change
METADATA_FILE = "shapes.json"
SPLITS = ("train", "validation")  # position = the split's id in the image seeds
JPEG_QUALITY = 90
MAX_IMAGE_SIZE = 2048

# --------------------------------------------------------------------------- the data set on disk

# The classes a set draws from, in order; ``classes=N`` takes the first N.
# "fine" (the default set): told apart by fine detail (a heptagon from an octagon, a circle
# from a circle with a dot, 5- from 7-pointed stars), so that resolution matters.
# "distinct": silhouettes a small model tells apart quickly, for lessons whose subject is
# not resolution (the norms of lesson 03).
CLASS_SETS = {
    "fine": CLASS_NAMES,
    "distinct": ("triangle", "square", "circle", "star5", "cross", "ring", "crescent", "star8",
                 "pentagon", "hexagon", "star6", "square_dot", "heptagon", "octagon",
                 "circle_dot", "star7"),
}
DEFAULT_CLASS_SET = "fine"


def _class_of(index: int, classes: int) -> int:
    return index % classes  # balanced: class counts differ by at most one


def _write_images(job) -> int:
    """Render and save one chunk of a split (runs in a worker process)."""
    root, split_id, start, stop, image_size, class_names, seed = job
    folder = Path(root) / SPLITS[split_id]
    for index in range(start, stop):
        name = class_names[_class_of(index, len(class_names))]
        rng = np.random.default_rng([seed, split_id, index])
        pixels = render(CLASS_NAMES.index(name), rng, image_size)
        # No optimize/progressive flags: the plain baseline encoder is the one every
        # decoder (and tf.io.decode_jpeg's crop path) handles fastest.
        Image.fromarray(pixels).save(folder / name / f"{index:06d}.jpg", quality=JPEG_QUALITY)
    return stop - start


def _check_int(name: str, value, minimum: int, maximum: int | None = None, why: str = "") -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if ok and value >= minimum and (maximum is None or value <= maximum):
        return int(value)
    accepted = f"an integer >= {minimum}" if maximum is None else f"an integer in {minimum}..{maximum}"
    raise ValueError(f"{name}={value!r}: it must be {accepted}{why}.")


def _parameters(image_size, train, validation, classes, seed, class_set=DEFAULT_CLASS_SET) -> dict:
    """Validated parameters, as recorded in shapes.json (less "seconds")."""
    if class_set not in CLASS_SETS:
        raise ValueError(f"class_set={class_set!r}: accepted {', '.join(CLASS_SETS)}.")
    classes = _check_int("classes", classes, 2, len(CLASS_NAMES),
                         f" (the list CLASS_NAMES has {len(CLASS_NAMES)}; the first `classes` are used)")
    image_size = _check_int("image_size", image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
    train = _check_int("train", train, classes, None, f", at least one image per class ({classes} classes)")
    validation = _check_int("validation", validation, 0)
    if 0 < validation < classes:
        # An empty class folder would break folder loaders, and a missing one would
        # shift the labels of the split.
        raise ValueError(f"validation={validation}: it must be 0 (no validation split) or at least one "
                         f"image per class (>= {classes} for {classes} classes).")
    seed = _check_int("seed", seed, 0)
    return {"generator": GENERATOR, "version": VERSION, "image_size": image_size, "train": train,
            "validation": validation, "classes": classes, "class_set": class_set,
            "class_names": list(CLASS_SETS[class_set][:classes]), "seed": seed}


def _same_set(metadata: dict, parameters: dict) -> bool:
    # Sets written before class_set existed hold the default one.
    recorded = dict(metadata, class_set=metadata.get("class_set", DEFAULT_CLASS_SET))
    return {key: recorded.get(key) for key in parameters} == parameters


def read_metadata(path) -> dict:
    """The parameters of a generated shapes set: ``path/shapes.json`` as a dict."""
    file = Path(path) / METADATA_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"{file} not found: {path} is not a generated shapes data set. Make one with "
            f"`effnet data make-shapes --output-dir DIR` (or effnet_lib.data.shapes.make_shapes(DIR)).")
    with open(file) as handle:
        metadata = json.load(handle)
    if metadata.get("generator") != GENERATOR:
        raise ValueError(f"{file} was not written by the {GENERATOR} generator "
                         f"(generator={metadata.get('generator')!r}).")
    return metadata


def _reusable(out_dir: Path, parameters: dict) -> bool:
    """True when out_dir already holds this very set; False when it is absent or an empty
    folder; FileExistsError for anything else, so that nothing is ever overwritten."""
    if not out_dir.exists():
        return False
    if not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder: choose another output folder.")
    if (out_dir / METADATA_FILE).is_file():
        try:
            metadata = read_metadata(out_dir)
        except (ValueError, OSError):
            metadata = {}
        if _same_set(metadata, parameters):
            return True
        differences = ", ".join(f"{key}={metadata.get(key)!r} (asked {value!r})"
                                for key, value in parameters.items()
                                if key != "class_names" and metadata.get(key) != value)
        raise FileExistsError(
            f"{out_dir} already holds a different shapes set ({differences or 'other parameters'}). "
            f"Delete it to regenerate, or choose another output folder.")
    entries = sorted(entry.name for entry in os.scandir(out_dir))
    if entries:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise FileExistsError(
            f"{out_dir} is not empty ({len(entries)} entries: {shown}) and is not a shapes data set "
            f"(no {METADATA_FILE}). The generator only writes into a new or empty folder: choose "
            f"another output folder, or delete this one.")
    return False


def _default_workers(images: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    # Starting processes costs more than it saves on small sets.
    return 1 if images < 1000 else max(1, min(cores, 8))


def make_shapes(out_dir, image_size: int = 128, train: int = 10000, validation: int = 2000,
                classes: int = 10, seed: int = 0, workers: int | None = None,
                progress: bool = True, class_set: str = DEFAULT_CLASS_SET) -> Path:
    """Generate the shapes set into ``out_dir`` (see the module docstring); return its path.

    Writes ``out_dir/train/<class>/<index>.jpg``, ``out_dir/validation/<class>/...``
    (image ``i`` has class ``i % classes``: balanced) and ``out_dir/shapes.json``.
    The set is built in a hidden sibling folder and renamed into place at the
    end, so ``out_dir`` either holds a whole set or does not exist; a run that is
    killed outright (SIGKILL) may leave a ``.<name>.partial-*`` folder beside it to
    delete. If ``out_dir`` already holds a set with the same parameters it is
    returned as it is; any other non-empty ``out_dir`` raises FileExistsError.

    Args:
        image_size: side of the square images, 16..2048.
        train, validation: image counts; ``train >= classes``, ``validation`` 0 or ``>= classes``.
        classes: how many classes of the class set to use (its first ones), 2..16.
        class_set: ``"fine"`` (the default: fine-detail classes) or ``"distinct"``
            (:data:`CLASS_SETS`).
        seed: any integer >= 0; the images depend only on it and the parameters.
        workers: processes; default: the available cores (1 for small sets). The
            images do not depend on it.
        progress: show a progress bar.
    """
    parameters = _parameters(image_size, train, validation, classes, seed, class_set)
    if workers is not None:
        workers = _check_int("workers", workers, 1)
    out_dir = Path(out_dir).expanduser().absolute()
    if _reusable(out_dir, parameters):
        return out_dir

    counts = {"train": parameters["train"], "validation": parameters["validation"]}
    total = sum(counts.values())
    workers = workers or _default_workers(total)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    partial = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        for split, count in counts.items():
            for name in parameters["class_names"] if count else ():
                (partial / split / name).mkdir(parents=True)
        # Chunks of a few hundred images: small enough for a smooth progress bar and
        # an even share between workers, large enough that dispatch costs nothing.
        chunk = max(1, min(250, math.ceil(total / (4 * workers))))
        jobs = [(str(partial), SPLITS.index(split), start, min(start + chunk, count),
                 parameters["image_size"], parameters["class_names"], parameters["seed"])
                for split, count in counts.items() for start in range(0, count, chunk)]
        _run_jobs(jobs, workers, total, progress, f"shapes {parameters['image_size']}px")
        metadata = dict(parameters, seconds=round(time.perf_counter() - started, 2))
        with open(partial / METADATA_FILE, "w") as handle:
            json.dump(metadata, handle, indent=2)
        _move_into_place(partial, out_dir, parameters)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out_dir


def _run_jobs(jobs, workers: int, total: int, progress: bool, description: str) -> None:
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=description, unit="img", disable=not progress) as bar:
        if workers == 1 or len(jobs) == 1:
            for job in jobs:
                bar.update(_write_images(job))
            return
        # "fork" on Linux: the workers start at once and do not re-import the caller
        # (importing effnet_lib.data loads TensorFlow, seconds per worker under
        # "spawn"). They only run numpy and Pillow, never TensorFlow, so the threads
        # a loaded TensorFlow keeps in the parent do not matter to them. Elsewhere
        # "spawn", the safe default of macOS and Windows.
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        with multiprocessing.get_context(method).Pool(min(workers, len(jobs))) as pool:
            for done in pool.imap_unordered(_write_images, jobs):
                bar.update(done)


def _move_into_place(partial: Path, out_dir: Path, parameters: dict) -> None:
    """Rename the finished set to out_dir (atomic on one file system)."""
    try:
        if out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()  # an empty folder is the user's "put it here"
        os.rename(partial, out_dir)
    except OSError:
        # Another run finished first: fine if it made the same set.
        if _reusable(out_dir, parameters):
            shutil.rmtree(partial, ignore_errors=True)
            return
        raise
