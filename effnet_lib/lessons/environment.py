"""The first cell of every lesson: what this kernel has, the device it will use, the budget.

A lesson opened on a hosted notebook server (Paperspace Gradient, a university JupyterHub)
runs in whatever kernel the server starts. The checks here say, in one line each, what is
missing and the exact command that fixes it, instead of an import error twenty cells later.
They cost well under a second on top of importing TensorFlow, which every lesson does anyway.
"""

from __future__ import annotations

import importlib.metadata
import sys
from dataclasses import dataclass

KERNEL_NAME = "effnet-kit"  # what `make lab` registers; every lesson's kernel spec names it
KERNEL_DISPLAY_NAME = "Python (effnet-kit)"
INSTALL_HINT = ("in a terminal at the kit's root run `make lab` and pick the kernel "
                f"'{KERNEL_DISPLAY_NAME}'; on a hosted server run `%pip install -e ..[dev]` "
                "(GPU server: `%pip install -e ..[gpu]`) in a cell, then restart the kernel")
# What the lessons import, by distribution name, beyond TensorFlow and Keras.
LESSON_PACKAGES = ("pandas", "matplotlib", "seaborn", "ipywidgets", "papermill")


@dataclass(frozen=True)
class Finding:
    """One line of the check: a name, what was found, and what to do when it is a problem."""

    name: str
    found: str
    problem: str = ""  # empty when fine

    def line(self) -> str:
        mark = "ok " if not self.problem else "!! "
        return f"{mark}{self.name:11s} {self.found}" + (f"  -> {self.problem}" if self.problem else "")


def version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def keras_problem(keras_version: str | None, tensorflow_version: str | None) -> str:
    """The one-line diagnosis of an incompatible TensorFlow / Keras pair ('' when fine)."""
    if keras_version is None:
        return f"Keras is not installed: {INSTALL_HINT}"
    if int(keras_version.split(".")[0]) < 3:
        return (f"Keras {keras_version} is Keras 2 (this image's own); the kit needs Keras 3. "
                "Do not upgrade it in place (the image's TensorFlow expects Keras 2): make a "
                "separate environment, `python -m venv ~/effnet-venv && ~/effnet-venv/bin/pip "
                "install -e .[dev]`, register it with `~/effnet-venv/bin/python -m ipykernel "
                f"install --user --name {KERNEL_NAME}`, and pick that kernel")
    if tensorflow_version is None:
        return f"TensorFlow is not installed: {INSTALL_HINT}"
    major, minor = (int(part) for part in tensorflow_version.split(".")[:2])
    if (major, minor) < (2, 16):
        return (f"TensorFlow {tensorflow_version} predates Keras 3 support (2.16): "
                f"{INSTALL_HINT}")
    return ""


def tensorflow_version() -> str | None:
    return version_of("tensorflow") or version_of("tensorflow-cpu")


def devices() -> list[str]:
    """The accelerators TensorFlow sees, by name; empty on a CPU-only machine."""
    import tensorflow as tf

    found = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        found.append(details.get("device_name", device.name))
    return found


def findings(budget: str, output_dir=None, runs_models: bool = True) -> list[Finding]:
    """Every check, in the order the cell prints them. ``runs_models=False`` (a lesson that
    builds and times no model: 05, 06) skips the device, which takes loading TensorFlow:
    seconds of a lesson that needs none of it."""
    from pathlib import Path

    from .records import BUDGETS

    python_ok = sys.version_info >= (3, 10)
    package = Path(__file__).resolve().parents[1]  # effnet_lib/, without importing the API
    result = [Finding("python", sys.version.split()[0],
                      "" if python_ok else "the kit needs Python 3.10 or newer"),
              Finding("effnet_lib", f"{version_of('effnet-kit') or 'not installed'} from {package}")]
    tf_version, keras_version = tensorflow_version(), version_of("keras")
    problem = keras_problem(keras_version, tf_version)
    result.append(Finding("tensorflow", f"{tf_version}, keras {keras_version}", problem))
    missing = [name for name in LESSON_PACKAGES if version_of(name) is None]
    result.append(Finding("packages", "all there" if not missing else f"missing {', '.join(missing)}",
                          f"{INSTALL_HINT}" if missing else ""))
    if not problem and runs_models:
        gpus = devices()
        result.append(Finding("device", f"GPU: {', '.join(gpus)}" if gpus else
                              "CPU (no GPU visible to TensorFlow)"))
    elif not problem:
        result.append(Finding("device", "not needed: this lesson runs no model"))
    result.append(Finding("budget", budget, "" if budget in BUDGETS else
                          f"choose one of {', '.join(BUDGETS)}"))
    if output_dir is not None:
        result.append(Finding("output_dir", str(output_dir)))
    return result


def check_environment(budget: str, output_dir=None, say=print,
                      runs_models: bool = True) -> list[Finding]:
    """Print the check, one line each; raise with every problem's fix if any is found."""
    result = findings(budget, output_dir, runs_models)
    for finding in result:
        say(finding.line())
    problems = [f for f in result if f.problem]
    if problems:
        raise RuntimeError("This kernel cannot run the lesson: "
                           + "; ".join(f"{f.name}: {f.problem}" for f in problems))
    return result


def strip_outputs_on_save(model: dict, path: str, **_) -> None:
    """JupyterLab pre-save hook (``make lab`` sets it): a lesson is saved without outputs and
    execution counts, as it is committed, so running the lessons leaves ``git status`` clean.
    The open notebook keeps its outputs; the executed lessons of the last ``make reproduce``
    are in ``figures/notebooks/``. Other files are saved as they are."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    for cell in model["content"].get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
