"""Which implementation runs grouped convolutions: the fastest one measured here.

Two implementations compute the same function with the same weights:

* ``native``: Keras's ``Conv2D(groups=g)``, one call the backend lowers itself.
* ``split``: one dense convolution per group, concatenated
  (:class:`effnet_lib.models.grouped_conv.Conv2D`).

Which is faster depends on the backend, the device and the compiler (see
``effnet benchmark-groups``). ``conv_impl="auto"`` looks the answer up, in order:

1. the user's own measurement, saved by ``effnet benchmark-groups --save-choice``
   into ``$EFFNET_DATA_DIR/conv_impl.json`` (default ``~/.cache/effnet-kit``);
2. the measurements shipped with the kit (``conv_impl_measured.json`` beside
   this file: where, when and by how much each winner won);
3. for a backend and device nobody measured, ``native``: the backend's own
   lowering is the one its authors tune.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..common.files import write_text
from ..common.paths import data_dir

CONV_IMPLS = ("auto", "native", "split")
SHIPPED = Path(__file__).with_name("conv_impl_measured.json")


def user_choices_path() -> Path:
    return data_dir() / "conv_impl.json"


def device_kind(backend: str | None = None) -> str:
    """``"gpu"`` when the backend computes on an accelerator, else ``"cpu"``."""
    import keras

    backend = backend or keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    if backend == "jax":
        import jax

        return "cpu" if jax.default_backend() == "cpu" else "gpu"
    if backend == "torch":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    return "cpu"


def _read(path: Path) -> list:
    if not path.is_file():
        return []
    try:
        return json.loads(path.read_text())["choices"]
    except (ValueError, KeyError) as error:
        raise ValueError(f"{path} is not a conv_impl choice file ({error}); delete it or "
                         f"re-create it with `effnet benchmark-groups --save-choice`.") from error


def choose(backend: str | None = None, device: str | None = None) -> tuple[str, str]:
    """The implementation ``auto`` resolves to, and why (where the measurement came from)."""
    import keras

    backend = backend or keras.backend.backend()
    device = device or device_kind(backend)
    for path, origin in ((user_choices_path(), "your measurement"), (SHIPPED, "shipped measurement")):
        for entry in _read(path):
            if entry["backend"] == backend and entry["device"] == device:
                return entry["winner"], f"{origin} ({entry.get('date', 'undated')}, {path})"
    return "native", f"no measurement for {backend} on {device}: the backend's own lowering"


def resolve(conv_impl: str) -> str:
    """``native`` or ``split`` for a requested ``conv_impl``."""
    if conv_impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl={conv_impl!r}: accepted {', '.join(CONV_IMPLS)}.")
    return choose()[0] if conv_impl == "auto" else conv_impl


def save_choice(entries: list[dict], path: Path | None = None) -> Path:
    """Merge measured winners (dicts with backend, device, winner, ...) into the user's file."""
    path = Path(path or user_choices_path())
    keep = [e for e in _read(path)
            if not any((e["backend"], e["device"]) == (n["backend"], n["device"]) for n in entries)]
    text = json.dumps({"choices": keep + entries}, indent=2) + "\n"
    return write_text(path, text)


def grouped_conv_class(conv_impl: str = "auto"):
    """The layer class for grouped convolutions: Keras's own, or split per group."""
    import keras

    from .grouped_conv import Conv2D as SplitConv2D

    return SplitConv2D if resolve(conv_impl) == "split" else keras.layers.Conv2D
