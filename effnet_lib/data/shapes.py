"""The "shapes" data set: an embedded, offline, deterministic image-classification set.

The kit generates it itself, so that the whole training path (JPEG files in a
class-folder layout, decoding, cropping, the model, the metrics) runs anywhere
without a download::

    effnet data make-shapes --out DIR          # or make_shapes(DIR, image_size=128)

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
from PIL import Image, ImageDraw

__all__ = ["CLASS_NAMES", "make_shapes", "read_metadata", "render"]

# The first ten are the default set. Polygons by number of sides, the circle and
# the dotted circle, and stars by number of points are the "fine detail" classes;
# the later ones add other silhouettes for runs that want more classes.
CLASS_NAMES: tuple[str, ...] = (
    "triangle", "square", "pentagon", "hexagon", "heptagon", "octagon",
    "circle", "circle_dot", "star5", "star7",
    "star6", "star8", "cross", "ring", "crescent", "square_dot",
)

GENERATOR = "effnet-kit shapes"
VERSION = 1  # bump when the images a given seed produces change
METADATA_FILE = "shapes.json"
SPLITS = ("train", "validation")  # position = the split's id in the image seeds
JPEG_QUALITY = 90
MIN_IMAGE_SIZE = 16
MAX_IMAGE_SIZE = 2048

# Geometry, in fractions of the image side.
MAIN_RADIUS = (0.24, 0.42)        # circumradius of the class shape
CLUTTER_RADIUS = (0.03, 0.08)   # clutter shapes stay clearly smaller than the class shape
STAR_INNER = (0.42, 0.68)       # inner/outer radius of stars: a fat star nears a polygon


# --------------------------------------------------------------------------- geometry
# Outlines are (k, 2) arrays in unit coordinates centred on the origin, radius ~1.

def _regular_polygon(sides: int, phase: float = 0.0) -> np.ndarray:
    angles = phase + 2 * np.pi * np.arange(sides) / sides
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _circle(radius: float = 1.0, centre=(0.0, 0.0)) -> np.ndarray:
    # Enough vertices that no facet shows even at 512 px; a polygon (not
    # ellipse()) so that it rotates and stretches like every other outline.
    return np.asarray(centre) + radius * _regular_polygon(96)


def _star(points: int, inner: float) -> np.ndarray:
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return _regular_polygon(2 * points) * radii[:, None]


def _cross(arm: float) -> np.ndarray:
    a = arm / 2
    b = 0.9  # reach of the arms, so that the cross looks as large as the others
    return np.array([(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a),
                     (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)])


def _class_layers(name: str, rng: np.random.Generator):
    """The parts of one class shape: [(outline, role)], role "fill", "hole" or "mark".

    "hole" parts are cut out of the filled parts (the background shows through);
    "mark" parts are painted on top in a contrasting colour.
    """
    polygons = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6, "heptagon": 7,
                "octagon": 8}
    if name in polygons:
        return [(_regular_polygon(polygons[name]), "fill")]
    if name == "circle":
        return [(_circle(), "fill")]
    if name.startswith("star"):
        return [(_star(int(name[4:]), rng.uniform(*STAR_INNER)), "fill")]
    if name == "cross":
        return [(_cross(rng.uniform(0.35, 0.55)), "fill")]
    if name == "ring":
        return [(_circle(), "fill"), (_circle(rng.uniform(0.45, 0.7)), "hole")]
    if name == "crescent":
        # A disc minus a shifted disc; the horn tips must stay clear of each other.
        shift = rng.uniform(0.35, 0.55)
        return [(_circle(), "fill"), (_circle(rng.uniform(0.8, 0.95), (shift, 0.0)), "hole")]
    if name in ("circle_dot", "square_dot"):
        # The small off-centre mark is the whole difference from circle / square:
        # about 3% of the image side across, so it fades at low resolution.
        base = _circle() if name == "circle_dot" else _regular_polygon(4)
        angle = rng.uniform(0, 2 * np.pi)
        distance = rng.uniform(0.0, 0.35)
        dot = _circle(rng.uniform(0.13, 0.2), (distance * np.cos(angle), distance * np.sin(angle)))
        return [(base, "fill"), (dot, "mark")]
    raise ValueError(f"unknown shape class {name!r}")


def _place(outline: np.ndarray, centre, radius: float, angle: float, stretch: float) -> np.ndarray:
    """Stretch (aspect ratio), rotate, scale and move a unit outline into image fractions."""
    scaled = outline * np.array([stretch, 1.0 / stretch])
    c, s = np.cos(angle), np.sin(angle)
    rotated = scaled @ np.array([[c, s], [-s, c]])
    return np.asarray(centre) + radius * rotated


# --------------------------------------------------------------------------- colours

def _luma(rgb) -> float:
    return float(np.dot(rgb, (0.299, 0.587, 0.114)))


def _colour_with_luma(rng: np.random.Generator, luma: float) -> np.ndarray:
    """A random hue whose brightness is moved to about ``luma``."""
    rgb = rng.uniform(0, 255, 3)
    return np.clip(rgb + (luma - _luma(rgb)), 0, 255)


def _contrasting(rng: np.random.Generator, against: float, low: float, high: float) -> np.ndarray:
    """A colour whose brightness differs from ``against`` by ``low``..``high``,
    darker or lighter, whichever fits (at random when both do)."""
    gap = rng.uniform(low, high)
    options = [luma for luma in (against - gap, against + gap) if 0 <= luma <= 255]
    if not options:  # only for gaps wider than half the range
        options = [0.0 if against > 127.5 else 255.0]
    return _colour_with_luma(rng, options[rng.integers(len(options))])


def _rgb(colour) -> tuple[int, int, int]:
    return tuple(int(round(v)) for v in colour)


# --------------------------------------------------------------------------- rendering

def _supersampling(image_size: int) -> int:
    # Shapes are drawn this many times larger, then box-filtered down: anti-aliased
    # edges, so that a small image shows a blurred heptagon rather than a jagged
    # blob whose pixels depend on the drawing routine's rounding.
    return 4 if image_size <= 128 else 3 if image_size <= 256 else 2


def _background(rng: np.random.Generator, image_size: int):
    """A linear colour gradient plus smooth blotches; returns (pixels float32, mean luma)."""
    start, end = rng.uniform(40, 215, (2, 3))
    direction = rng.uniform(0, 2 * np.pi)
    cells = int(rng.integers(3, 6))
    blotches = rng.uniform(-35, 35, (cells, cells, 3))

    t = (np.arange(image_size) + 0.5) / image_size - 0.5
    along = np.cos(direction) * t[None, :] + np.sin(direction) * t[:, None]  # in [-0.71, 0.71]
    along = (along - along.min()) / (along.max() - along.min())
    pixels = start + (end - start) * along[..., None]
    # Bicubic upsampling of a coarse grid gives smooth, low-frequency colour patches.
    grid = Image.fromarray(np.uint8(blotches + 128))
    pixels += np.asarray(grid.resize((image_size, image_size), Image.BICUBIC), np.float32) - 128
    pixels = np.clip(pixels, 0, 255).astype(np.float32)
    return pixels, _luma((start + end) / 2)


def _random_outline(rng: np.random.Generator) -> np.ndarray:
    kind = rng.integers(3)
    if kind == 0:
        return _regular_polygon(int(rng.integers(3, 9)))
    if kind == 1:
        return _star(int(rng.integers(5, 9)), rng.uniform(*STAR_INNER))
    return _circle()


def _random_stroke(rng: np.random.Generator):
    """A straight or bent stroke: a polyline of 2 or 3 points (image fractions)."""
    points = rng.uniform(-0.05, 1.05, (int(rng.integers(2, 4)), 2))
    return points, rng.uniform(0.006, 0.018)  # width, fraction of the side


def render(class_index: int, rng: np.random.Generator, image_size: int) -> np.ndarray:
    """One image of class ``CLASS_NAMES[class_index]``: uint8 ``(image_size, image_size, 3)``.

    All random choices come from ``rng``, geometry first and pixel noise last, so
    that one seed gives the same scene at every size.
    """
    if not 0 <= class_index < len(CLASS_NAMES):
        raise ValueError(f"class_index={class_index!r}: accepted 0..{len(CLASS_NAMES) - 1} "
                         f"(CLASS_NAMES has {len(CLASS_NAMES)} classes).")
    if not (isinstance(image_size, (int, np.integer)) and image_size >= MIN_IMAGE_SIZE):
        raise ValueError(f"image_size={image_size!r}: it must be an integer >= {MIN_IMAGE_SIZE}.")
    image_size = int(image_size)

    # ---- draw every random choice, in relative units
    background, background_luma = _background(rng, image_size)

    clutter = []  # (outline in image fractions, colour) drawn under the class shape
    for _ in range(int(rng.integers(1, 4))):
        radius = rng.uniform(*CLUTTER_RADIUS)
        outline = _place(_random_outline(rng), rng.uniform(0, 1, 2), radius,
                         rng.uniform(0, 2 * np.pi), rng.uniform(0.8, 1.25))
        clutter.append((outline, _contrasting(rng, background_luma, 30, 110)))
    dots = [(rng.uniform(0, 1, 2), rng.uniform(0.006, 0.02),
             _contrasting(rng, background_luma, 30, 110)) for _ in range(int(rng.integers(2, 9)))]
    under_strokes = [(*_random_stroke(rng), _contrasting(rng, background_luma, 30, 110))
                     for _ in range(int(rng.integers(1, 4)))]

    radius = rng.uniform(*MAIN_RADIUS)
    margin = radius * 1.05  # the shape stays (almost) whole inside the image
    centre = rng.uniform(margin, 1 - margin, 2)
    angle = rng.uniform(0, 2 * np.pi)  # every class is rotation-invariant
    stretch = rng.uniform(0.88, 1.14)  # mild, so a stretched hexagon is still a hexagon
    # The class's own choices (a star's depth, where the dot sits) come from a child
    # generator that takes one draw whatever the class: one seed then gives the same
    # scene for every class, and only the class shape differs.
    shape_rng = np.random.default_rng(rng.integers(2**63))
    layers = [(_place(outline, centre, radius, angle, stretch), role)
              for outline, role in _class_layers(CLASS_NAMES[class_index], shape_rng)]
    fill = _contrasting(rng, background_luma, 70, 130)
    mark = _contrasting(rng, _luma(fill), 70, 140)
    # A stroke or two across the class shape: edges and marks are sometimes broken.
    over_strokes = [(*_random_stroke(rng), _contrasting(rng, background_luma, 30, 110))
                    for _ in range(int(rng.integers(0, 2)))]
    noise_sigma = rng.uniform(2, 6)

    # ---- paint at `factor` times the size, then reduce
    factor = _supersampling(image_size)
    big = image_size * factor
    canvas = Image.fromarray(np.uint8(np.round(background))).resize((big, big), Image.NEAREST)
    draw = ImageDraw.Draw(canvas)

    def pixels(points):
        return [tuple(p) for p in (np.asarray(points) * big).tolist()]

    def width(fraction):
        # At least ~0.7 output pixel: thinner strokes would vanish at 32 px.
        return max(1, int(round(max(fraction * image_size, 0.7) * factor)))

    for outline, colour in clutter:
        draw.polygon(pixels(outline), fill=_rgb(colour))
    for (x, y), r, colour in dots:
        r = max(r * big, 0.6 * factor)
        draw.ellipse([x * big - r, y * big - r, x * big + r, y * big + r], fill=_rgb(colour))
    for points, stroke_width, colour in under_strokes:
        draw.line(pixels(points), fill=_rgb(colour), width=width(stroke_width), joint="curve")

    # Fill and holes go through a mask so that a hole shows the (cluttered) background.
    mask = Image.new("L", (big, big), 0)
    mask_draw = ImageDraw.Draw(mask)
    for outline, role in layers:
        if role in ("fill", "hole"):
            mask_draw.polygon(pixels(outline), fill=255 if role == "fill" else 0)
    box = mask.getbbox()  # paste only where the shape is: the full-canvas paste is the slow part
    if box:
        canvas.paste(_rgb(fill), box, mask.crop(box))
    for outline, role in layers:
        if role == "mark":
            draw.polygon(pixels(outline), fill=_rgb(mark))

    for points, stroke_width, colour in over_strokes:
        draw.line(pixels(points), fill=_rgb(colour), width=width(stroke_width), joint="curve")

    image = np.asarray(canvas.reduce(factor), np.float32)  # box filter: the anti-aliasing
    image += rng.normal(0, noise_sigma, image.shape).astype(np.float32)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- the data set on disk

def _class_of(index: int, classes: int) -> int:
    return index % classes  # balanced: class counts differ by at most one


def _write_images(job) -> int:
    """Render and save one chunk of a split (runs in a worker process)."""
    root, split_id, start, stop, image_size, classes, seed = job
    folder = Path(root) / SPLITS[split_id]
    for index in range(start, stop):
        label = _class_of(index, classes)
        rng = np.random.default_rng([seed, split_id, index])
        pixels = render(label, rng, image_size)
        # No optimize/progressive flags: the plain baseline encoder is the one every
        # decoder (and tf.io.decode_jpeg's crop path) handles fastest.
        Image.fromarray(pixels).save(folder / CLASS_NAMES[label] / f"{index:06d}.jpg",
                                     quality=JPEG_QUALITY)
    return stop - start


def _check_int(name: str, value, minimum: int, maximum: int | None = None, why: str = "") -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if ok and value >= minimum and (maximum is None or value <= maximum):
        return int(value)
    accepted = f"an integer >= {minimum}" if maximum is None else f"an integer in {minimum}..{maximum}"
    raise ValueError(f"{name}={value!r}: it must be {accepted}{why}.")


def _parameters(image_size, train, validation, classes, seed) -> dict:
    """Validated parameters, as recorded in shapes.json (less "seconds")."""
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
            "validation": validation, "classes": classes,
            "class_names": list(CLASS_NAMES[:classes]), "seed": seed}


def _same_set(metadata: dict, parameters: dict) -> bool:
    return {key: metadata.get(key) for key in parameters} == parameters


def read_metadata(path) -> dict:
    """The parameters of a generated shapes set: ``path/shapes.json`` as a dict."""
    file = Path(path) / METADATA_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"{file} not found: {path} is not a generated shapes data set. Make one with "
            f"`effnet data make-shapes --out DIR` (or effnet_lib.data.shapes.make_shapes(DIR)).")
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
                progress: bool = True) -> Path:
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
        classes: how many of :data:`CLASS_NAMES` to use (the first ones), 2..16.
        seed: any integer >= 0; the images depend only on it and the parameters.
        workers: processes; default: the available cores (1 for small sets). The
            images do not depend on it.
        progress: show a progress bar.
    """
    parameters = _parameters(image_size, train, validation, classes, seed)
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
                 parameters["image_size"], parameters["classes"], parameters["seed"])
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
