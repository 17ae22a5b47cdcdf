"""Inference: export a model for serving, and classify image files with it.

:func:`export` writes a folder a server can load without the kit's training code:

* ``model.keras``: the Keras model (its custom layers are registered, so
  ``keras.saving.load_model`` reads it with ``safe_mode`` on once ``effnet_lib`` is imported);
* ``saved_model/``: a TensorFlow SavedModel with a ``serve`` endpoint (``model.export``),
  which TensorFlow Serving loads as it is: float32 RGB images, 0-255, at the model's size, in;
  logits out;
* ``export.json``: what the model is, its input size, its class names and preprocessing,
  and the inference rewrites applied.

By default the exported model is rewritten for inference
(:func:`effnet_lib.models.inference_rewrite.for_inference`: BatchNorm folded into the
convolutions, Proxy Norm's proxy moments stored, dropout removed); its outputs equal the
trained model's in inference mode within float32 rounding. ``rewrite=False`` exports the
model as trained.

:func:`predict` classifies JPEG/PNG files with an exported folder, a run folder (its newest
checkpoint) or a checkpoint, preprocessed as validation is (resize the short side, centre
crop 224/256).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EXPORT_META = "export.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def load_classifier(source):
    """``(model, meta)`` from an exported folder, a run folder, a checkpoint or a model name
    (a name gives an untrained model at its own resolution: for timing, not for predicting)."""
    import keras

    from . import checkpoints

    path = Path(str(source)).expanduser()
    if (path / EXPORT_META).is_file():
        from ..models import register_layers

        register_layers()  # a fresh process has built no model: Keras knows no kit layer yet

        meta = json.loads((path / EXPORT_META).read_text())
        return keras.saving.load_model(path / "model.keras", safe_mode=True), meta
    from ..models.spec import EfficientNetSpec

    if path.exists():
        model, meta = checkpoints.load_model(path)
        return model, dict(name=EfficientNetSpec.from_dict(meta["spec"]).name, spec=meta["spec"],
                           image_size=meta["image_size"], class_names=meta.get("class_names"),
                           source=str(checkpoints.resolve(path)))
    from ..models.builder import build_model

    try:
        spec = EfficientNetSpec.from_name(str(source))
    except ValueError as error:
        raise FileNotFoundError(f"{source}: neither a folder (exported model, run, checkpoint) nor "
                                f"a model name. {error}") from None
    model = build_model(spec)
    return model, dict(name=spec.name, spec=dataclasses.asdict(spec), image_size=spec.resolution,
                       class_names=None,
                       source=f"{spec.name}, untrained")


REWRITES = ["BatchNorm folded into the convolution before it",
            "Proxy Norm's proxy moments computed once and stored",
            "dropout and drop-connect removed"]


def export(source, out, say=print, rewrite: bool = True) -> Path:
    """Write ``model.keras``, ``saved_model/`` and ``export.json`` for ``source`` into ``out``
    (a new or empty folder), rewritten for inference unless ``rewrite=False``. Written aside
    and renamed: a failure leaves no half export."""
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not empty: export into a new folder.")
    model, meta = load_classifier(source)
    if rewrite:
        from ..models.inference_rewrite import for_inference

        model = for_inference(model)
    meta = dict(meta, rewrites=REWRITES if rewrite else [])
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        model.save(partial / "model.keras")
        model.export(str(partial / "saved_model"), format="tf_saved_model", verbose=False)
        meta = dict(meta, input="float32 RGB in 0-255, shape [batch, S, S, 3], S = image_size",
                    output="logits (softmax gives probabilities)",
                    preprocessing="resize the short side to int(S * 256 / 224), crop the centre S x S")
        (partial / EXPORT_META).write_text(json.dumps(meta, indent=1) + "\n")
        if out.exists():
            out.rmdir()
        partial.replace(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    say(f"exported {meta['source']} to {out} (model.keras, saved_model/, {EXPORT_META}"
        f"{'; rewritten for inference' if rewrite else ''})")
    return out


@dataclass(frozen=True)
class Prediction:
    path: str
    top: list  # [(class name, probability)], most likely first; empty when unreadable
    error: str = ""


def image_files(paths) -> list[Path]:
    """The files to classify: each file as given, each folder's images (recursively, sorted)."""
    found = []
    for path in map(lambda p: Path(p).expanduser(), paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder.")
    if not found:
        raise FileNotFoundError(f"no JPEG or PNG images in {', '.join(map(str, paths))}.")
    return found


def predict(paths, source, top: int = 5, batch_size: int = 32) -> list[Prediction]:
    """Top-``top`` classes with probabilities for every image; an unreadable file gets its
    error instead, and the others are still classified."""
    import tensorflow as tf

    from ..data.preprocessing import preprocess_valid

    model, meta = load_classifier(source)
    size = int(meta["image_size"])
    names = meta.get("class_names")
    files = image_files(paths)
    readable, results = [], {}
    for path in files:
        try:
            encoded = tf.constant(path.read_bytes())
            readable.append((path, preprocess_valid(encoded, size).numpy()))
        except (tf.errors.InvalidArgumentError, OSError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            results[path] = Prediction(str(path), [], f"cannot read it as JPEG or PNG: {first}")
    for start in range(0, len(readable), batch_size):
        chunk = readable[start:start + batch_size]
        images = np.stack([image for _, image in chunk]).astype("float32")
        logits = np.asarray(model(images, training=False), dtype="float64")
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        for (path, _), row in zip(chunk, probabilities):
            best = np.argsort(-row)[:top]
            results[path] = Prediction(str(path), [
                (names[i] if names else f"class {i}", float(row[i])) for i in best])
    return [results[path] for path in files]
