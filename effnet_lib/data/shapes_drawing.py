"""Drawing one image of the shapes data set: the scene's random choices, then the paint.

:func:`render` is deterministic for a generator: every random choice is drawn
first, in relative units (:func:`draw_scene`), then painted at a few times the
output size and box-filtered down (:func:`paint`), then pixel noise is added. One
seed therefore gives the same scene at every image size. :mod:`.shapes` writes
the images to disk as a class-folder data set and says what the set is a proxy for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# The first ten are the default set. Polygons by number of sides, the circle and
# the dotted circle, and stars by number of points are the "fine detail" classes;
# the later ones add other silhouettes for runs that want more classes.
CLASS_NAMES: tuple[str, ...] = (
    "triangle", "square", "pentagon", "hexagon", "heptagon", "octagon",
    "circle", "circle_dot", "star5", "star7",
    "star6", "star8", "cross", "ring", "crescent", "square_dot",
)

MIN_IMAGE_SIZE = 16

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


@dataclass
class Scene:
    """Every random choice of one image, in fractions of the image side."""

    background: np.ndarray  # float32 pixels of the gradient and blotches
    clutter: list  # (outline, colour): small shapes under the class shape
    dots: list  # (centre, radius, colour)
    under_strokes: list  # (points, width, colour)
    layers: list  # (outline, role): the class shape's parts
    fill: np.ndarray
    mark: np.ndarray
    over_strokes: list  # strokes across the class shape
    noise_sigma: float


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
    scene = draw_scene(class_index, rng, image_size)
    image = paint(scene, image_size)
    image += rng.normal(0, scene.noise_sigma, image.shape).astype(np.float32)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def draw_scene(class_index: int, rng: np.random.Generator, image_size: int) -> Scene:
    """Draw every random choice of one image, in a fixed order (the images depend on it)."""
    background, background_luma = _background(rng, image_size)

    def contrasting():
        return _contrasting(rng, background_luma, 30, 110)

    clutter = []
    for _ in range(int(rng.integers(1, 4))):
        radius = rng.uniform(*CLUTTER_RADIUS)
        outline = _place(_random_outline(rng), rng.uniform(0, 1, 2), radius,
                         rng.uniform(0, 2 * np.pi), rng.uniform(0.8, 1.25))
        clutter.append((outline, contrasting()))
    dots = [(rng.uniform(0, 1, 2), rng.uniform(0.006, 0.02), contrasting())
            for _ in range(int(rng.integers(2, 9)))]
    under_strokes = [(*_random_stroke(rng), contrasting()) for _ in range(int(rng.integers(1, 4)))]

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
    over_strokes = [(*_random_stroke(rng), contrasting()) for _ in range(int(rng.integers(0, 2)))]
    return Scene(background, clutter, dots, under_strokes, layers, fill, mark, over_strokes,
                 noise_sigma=rng.uniform(2, 6))


def paint(scene: Scene, image_size: int) -> np.ndarray:
    """The scene at ``image_size``, painted ``factor`` times larger and reduced: float32 pixels."""
    factor = _supersampling(image_size)
    big = image_size * factor
    canvas = Image.fromarray(np.uint8(np.round(scene.background))).resize((big, big), Image.NEAREST)
    draw = ImageDraw.Draw(canvas)

    def pixels(points):
        return [tuple(p) for p in (np.asarray(points) * big).tolist()]

    def strokes(lines):
        for points, stroke_width, colour in lines:
            # At least ~0.7 output pixel: thinner strokes would vanish at 32 px.
            width = max(1, int(round(max(stroke_width * image_size, 0.7) * factor)))
            draw.line(pixels(points), fill=_rgb(colour), width=width, joint="curve")

    for outline, colour in scene.clutter:
        draw.polygon(pixels(outline), fill=_rgb(colour))
    for (x, y), r, colour in scene.dots:
        r = max(r * big, 0.6 * factor)
        draw.ellipse([x * big - r, y * big - r, x * big + r, y * big + r], fill=_rgb(colour))
    strokes(scene.under_strokes)
    # Fill and holes go through a mask so that a hole shows the (cluttered) background.
    mask = Image.new("L", (big, big), 0)
    mask_draw = ImageDraw.Draw(mask)
    for outline, role in scene.layers:
        if role in ("fill", "hole"):
            mask_draw.polygon(pixels(outline), fill=255 if role == "fill" else 0)
    box = mask.getbbox()  # paste only where the shape is: the full-canvas paste is the slow part
    if box:
        canvas.paste(_rgb(scene.fill), box, mask.crop(box))
    for outline, role in scene.layers:
        if role == "mark":
            draw.polygon(pixels(outline), fill=_rgb(scene.mark))
    strokes(scene.over_strokes)
    return np.asarray(canvas.reduce(factor), np.float32)  # box filter: the anti-aliasing
