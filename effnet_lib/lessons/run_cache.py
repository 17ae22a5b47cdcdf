"""Trained runs and measured results kept and reused, keyed by everything that decides them.

A lesson, a study or a workshop trains the same small models again and again. The
key of a run is a hash of its whole configuration: the case (every recipe field),
the model overrides, the data (for a generated shapes set, its parameters), the
epochs, the seed, the options of :func:`effnet_lib.train`, and the source of the
code that trains (``effnet_lib/models``, ``data``, ``training``), so that a change
to any of them trains afresh and nothing stale is reused. Runs live under
``$EFFNET_DATA_DIR/runs/`` (default ``~/.cache/effnet-kit/runs``); a run is trained
in a ``.partial`` folder and renamed when it is complete, so a killed run is never
mistaken for a finished one. A second request of the same key reuses the run and
says so.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import shutil
import time
from pathlib import Path

from ..common.paths import data_dir
from ..training.cases import CaseConfig

CODE_ROOMS = ("models", "data", "training")
COMPLETE = "validation.json"


@functools.lru_cache(maxsize=None)
def code_fingerprint(rooms=CODE_ROOMS) -> str:
    """A hash of the source (of the kit's ``rooms``) that decides what a run computes.

    Read once per process: a long run (the LN_PN study takes hours) computes with the code
    it imported, whatever is edited on disk meanwhile, and must be labelled with that."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for room in rooms:
        for path in sorted((root / room).rglob("*")):
            if path.suffix in (".py", ".yml", ".json") and path.is_file():
                digest.update(path.relative_to(root).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def data_identity(data: str) -> dict:
    """What a data source is: a generated shapes set by its parameters, others by name."""
    kind, _, argument = data.partition(":")
    if kind == "shapes" and argument:
        from ..data.shapes import read_metadata

        meta = read_metadata(argument)
        # class_set is absent from sets written before it existed: those are "fine".
        return {**{k: meta[k] for k in ("generator", "version", "image_size", "train",
                                        "validation", "classes", "seed")},
                "class_set": meta.get("class_set", "fine")}
    return {"source": data}


def run_key(case: CaseConfig, data: str, options: dict) -> str:
    description = dict(case=dataclasses.asdict(case), data=data_identity(data),
                       options=options, code=code_fingerprint())
    text = json.dumps(description, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_root() -> Path:
    return data_dir() / "runs"


def cached_train(case: CaseConfig, data: str, *, seed: int = 0, root=None, say=print,
                 **train_options) -> dict:
    """Train ``case`` on ``data`` (``effnet_lib.train`` with ``train_options``), or reuse the run
    trained with exactly this configuration.

    Returns ``dict(run_dir, key, reused, validation, log, seconds, class_names,
    images_per_epoch)``: ``log`` is the run's ``metrics.jsonl`` as a list, ``seconds`` the
    training time it recorded, ``images_per_epoch`` the training images one epoch used.
    """
    from ..training.train import train

    options = dict(train_options, seed=seed)
    key = run_key(case, data, options)
    folder = Path(root or cache_root()) / f"{case.model}-{key}"
    if not (folder / COMPLETE).is_file():
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)  # a killed run starts over
        started = time.perf_counter()
        train(case, data=data, run_dir=str(partial), seed=seed, say=say, progress=False,
              **train_options)
        if not (partial / COMPLETE).is_file():
            raise RuntimeError(f"the run in {partial} did not finish (no {COMPLETE}); see its "
                               f"metrics.jsonl.")
        (partial / "cache.json").write_text(json.dumps(
            dict(key=key, seconds=time.perf_counter() - started, data=data, seed=seed,
                 options={k: str(v) for k, v in train_options.items()}), indent=1))
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete older copy, if any
        partial.replace(folder)
        reused = False
    else:
        reused = True
        say(f"reusing the cached run {folder.name} (same case, data, options, seed and code)")
    return _result(folder, key, reused)


def _result(folder: Path, key: str, reused: bool) -> dict:
    from ..training import checkpoints

    log = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    cache = json.loads((folder / "cache.json").read_text())
    meta = checkpoints.read_meta(checkpoints.latest(folder))
    images_per_epoch = (meta["updates_per_epoch"] * meta["case"]["micro_batch_size"]
                        * meta["gradient_accumulation"] * meta["replicas"])
    return dict(run_dir=str(folder), key=key, reused=reused,
                validation=json.loads((folder / COMPLETE).read_text()), log=log,
                seconds=cache["seconds"], class_names=list(meta["class_names"]),
                images_per_epoch=int(images_per_epoch))


def cached_result(kind: str, description: dict, compute, *, rooms=CODE_ROOMS + ("lessons",),
                  root=None, say=print) -> dict:
    """``compute()`` (a JSON-able dict), or the result stored for the same ``description`` and
    the same source of ``rooms``; the stored copy is written aside and renamed."""
    from ..common.files import write_text

    text = json.dumps(dict(description, kind=kind, code=code_fingerprint(rooms)), sort_keys=True,
                      default=str)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = Path(root or data_dir() / "results") / f"{kind}-{key}.json"
    if path.is_file():
        say(f"reusing the cached {kind} result {path.name}")
        return dict(json.loads(path.read_text()), reused=True)
    result = compute()
    write_text(path, json.dumps(result, indent=1, default=float))
    return dict(result, reused=False)
