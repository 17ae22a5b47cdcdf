"""Checkpoints that survive a kill: written aside, then renamed into place.

A checkpoint is a folder ``epoch-0003/`` holding ``model.weights.h5`` (Keras
stores a compiled model's optimiser variables in it too: numbers only) and
``meta.json`` (the model's spec, image size, class names, epoch, weight updates).
It is written as ``epoch-0003.partial/`` and renamed when complete, so a kill
during a write leaves the previous checkpoints intact and the partial one is
ignored (and cleaned up) on the next run. The weight average lives in
``average/``, written the same way. Loading builds the model from the spec in
``meta.json`` and loads weights into it: nothing from the file is executed.

Checkpoints within an epoch (``--checkpoint-every-updates``, or a stop on SIGTERM)
are ``update-00000456/``: the same files, named by the weight updates they hold.
Resuming takes the newest intact checkpoint of either kind, by weight updates.

``meta.json`` also records the size and SHA-256 of the weights file, so a checkpoint
damaged after it was written (a truncated copy, a bad disk) is recognised: resuming skips
it with one warning line naming it and why, and takes the newest intact one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np

from ..models.spec import EfficientNetSpec

PATTERN = re.compile(r"^epoch-(\d{4,})$")
UPDATE_PATTERN = re.compile(r"^update-(\d{8,})$")
AVERAGE = "average"
WEIGHTS = "model.weights.h5"


def file_record(path: Path) -> dict:
    """What a checkpoint records of a file it holds: its size and SHA-256."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return dict(bytes=path.stat().st_size, sha256=digest.hexdigest())


def damage(folder) -> str:
    """Why the checkpoint ``folder`` cannot be used ('' when it is intact). A checkpoint
    written before checksums were recorded is taken as intact if its files are there."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except FileNotFoundError:
        return "no meta.json"
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return f"meta.json is not readable JSON ({error})"
    weights = folder / WEIGHTS
    if not weights.is_file():
        return f"no {WEIGHTS}"
    expected = meta.get("files", {}).get(WEIGHTS)
    if expected is None:
        return ""
    size = weights.stat().st_size
    if size != expected["bytes"]:
        return f"{WEIGHTS} has {size:,} bytes, {expected['bytes']:,} were written"
    if file_record(weights)["sha256"] != expected["sha256"]:
        return f"{WEIGHTS} does not match its recorded checksum"
    return ""


def spec_to_dict(spec: EfficientNetSpec) -> dict:
    return dataclasses.asdict(spec)


def random_state(model) -> dict:
    """The state of every layer's random stream (dropout, drop-connect), which Keras does not
    keep in the weights file: a resumed run draws the masks an uninterrupted one would."""
    return {layer.name: [int(v) for v in np.asarray(layer.seed_generator.state).ravel()]
            for layer in model.layers if getattr(layer, "seed_generator", None) is not None}


def restore_random_state(model, state: dict) -> None:
    """Put back the streams :func:`random_state` recorded (layers it does not name keep theirs)."""
    for layer in model.layers:
        generator = getattr(layer, "seed_generator", None)
        if generator is not None and layer.name in state:
            generator.state.assign(np.asarray(state[layer.name], dtype=generator.state.dtype)
                                   .reshape(generator.state.shape))


def write(folder: Path, model, meta: dict) -> Path:
    """Write a checkpoint folder atomically (aside, then renamed)."""
    folder = Path(folder)
    partial = folder.with_name(folder.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    try:
        partial.mkdir(parents=True)
        model.save_weights(partial / WEIGHTS)
        meta = dict(meta, files={WEIGHTS: file_record(partial / WEIGHTS)},
                    random_state=random_state(model))
        (partial / "meta.json").write_text(json.dumps(meta, indent=1))
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)  # a full disk: free what was written
        raise
    if folder.exists():
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        folder.replace(old)
        partial.replace(folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        partial.replace(folder)
    return folder


def epoch_folder(directory: Path, epoch: int) -> Path:
    return Path(directory) / f"epoch-{epoch:04d}"


def update_folder(directory: Path, updates: int) -> Path:
    """A checkpoint within an epoch, named by the weight updates it holds."""
    return Path(directory) / f"update-{updates:08d}"


def check_writable(directory) -> None:
    """A clear error now, before any training, when ``directory`` cannot hold a run."""
    directory = Path(directory)
    probe = directory / ".write-test"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"0" * 4096)
    except OSError as error:
        raise PermissionError(f"cannot write the run folder {directory}: {error.strerror or error}. "
                              f"Pick a folder you can write (--checkpoint-dir), or free space.") from None
    else:
        probe.unlink()


def _updates_held(path: Path) -> int:
    """The weight updates a checkpoint folder holds (from its meta; -1 when unreadable, so
    that it is looked at last and reported as damaged there)."""
    try:
        return int(json.loads((path / "meta.json").read_text())["updates"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


def _checkpoint_folders(directory: Path) -> list[Path]:
    """Every epoch and within-epoch checkpoint in ``directory``, newest (most updates) first."""
    found = [p for p in directory.iterdir()
             if (PATTERN.match(p.name) or UPDATE_PATTERN.match(p.name)) and p.is_dir()]
    return sorted(found, key=lambda p: (_updates_held(p), p.name), reverse=True)


def latest(directory, say=None) -> Path | None:
    """The newest intact checkpoint in ``directory`` (most weight updates, at an epoch's end or
    within one), or None when there is none.
    Damaged ones are skipped, each with one line through ``say`` naming it and why; when
    checkpoints exist but none is intact, a clear error says so."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    skipped = []
    for path in _checkpoint_folders(directory):
        reason = damage(path)
        if not reason:
            return path
        skipped.append(f"{path.name} ({reason})")
        if say is not None:
            say(f"warning: skipping the damaged checkpoint {path}: {reason}")
    if skipped:
        raise FileNotFoundError(
            f"{directory}: every checkpoint is damaged: {'; '.join(skipped)}. Restore one from a "
            f"copy, or delete the folder (or pick another) to start the run again.")
    return None


def clean_partials(directory) -> list[Path]:
    removed = [p for p in Path(directory).glob("*.partial") if p.is_dir()]
    for path in removed:
        shutil.rmtree(path)
    return removed


def prune(directory, keep: int = 2, keep_within_epoch: int = 2) -> None:
    """Keep the newest ``keep`` epoch checkpoints (the average is kept apart) and the newest
    ``keep_within_epoch`` checkpoints within an epoch that are newer than the last epoch's."""
    directory = Path(directory)
    found = sorted((int(m.group(1)), p) for p in directory.iterdir() if (m := PATTERN.match(p.name)))
    for _, path in found[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
    newest_epoch = max((_updates_held(p) for _, p in found[-keep:]), default=-1)
    within = sorted((int(m.group(1)), p) for p in directory.iterdir()
                    if (m := UPDATE_PATTERN.match(p.name)))
    for position, (updates, path) in enumerate(within):
        if updates <= newest_epoch or position < len(within) - keep_within_epoch:
            shutil.rmtree(path, ignore_errors=True)


def read_meta(folder) -> dict:
    folder = Path(folder)
    meta = folder / "meta.json"
    if not meta.is_file():
        hint = ""
        if folder.is_dir() and (newest := latest(folder)) is not None:
            hint = f" It is a run folder: its newest checkpoint is {newest}."
        raise FileNotFoundError(f"{folder} is not an effnet-kit checkpoint (no meta.json).{hint}")
    return json.loads(meta.read_text())


def resolve(path, say=print) -> Path:
    """A checkpoint folder from a checkpoint or a run folder (its newest intact epoch);
    a damaged checkpoint named directly is an error saying why."""
    path = Path(path)
    if (path / "meta.json").is_file():
        reason = damage(path)
        if reason:
            raise FileNotFoundError(f"{path} is damaged: {reason}. Use another checkpoint "
                                    f"(the run folder gives its newest intact one).")
        return path
    newest = latest(path, say=say)
    if newest is None:
        raise FileNotFoundError(f"{path}: no checkpoint there (expected a folder with meta.json, or "
                                f"a run folder holding epoch-NNNN/ checkpoints).")
    return newest


def load_model(path, image_size: int | None = None):
    """Build the checkpoint's model (at ``image_size``, default its own) and load its weights."""
    from ..models.builder import build_model

    folder = resolve(path)
    meta = read_meta(folder)
    spec = EfficientNetSpec.from_dict(meta["spec"])
    model = build_model(spec, image_size=image_size or meta["image_size"])
    model.load_weights(folder / WEIGHTS)
    return model, meta


def mean_folder_name(last_epochs: int) -> str:
    return f"mean-last-{last_epochs}-epochs"


def write_mean_of_last_epochs(run_dir, last_epochs: int) -> Path | None:
    """The mean of the checkpoints of the last ``last_epochs`` epochs, as the reference's
    ``--weight-avg-N`` (checkpoints at epochs ``>= final - N``), saved beside the average.

    Returns the folder, or None when the run folder holds no checkpoint.
    """
    import numpy as np

    found = sorted((int(m.group(1)), p) for p in Path(run_dir).iterdir()
                   if (m := PATTERN.match(p.name)) and (p / "meta.json").is_file())
    if not found:
        return None
    final = found[-1][0]
    chosen = [path for epoch, path in found if epoch >= final - last_epochs]
    weights = None
    for path in chosen:
        model, meta = load_model(path)
        values = [np.asarray(w, dtype=np.float64) for w in model.get_weights()]
        weights = values if weights is None else [a + b for a, b in zip(weights, values)]
    model.set_weights([w / len(chosen) for w in weights])
    return write(Path(run_dir) / mean_folder_name(last_epochs), model,
                 dict(meta, mean_of_epochs=[int(PATTERN.match(p.name).group(1)) for p in chosen]))
