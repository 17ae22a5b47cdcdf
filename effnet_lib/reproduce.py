"""The tables of the main job, as functions the notebooks call.

``effnet reproduce`` (``make reproduce``) runs the notebooks (``notebook_runner``);
they write the tables through this module and ``paper_tables``:

* notebook 01 writes the model table (:func:`write_model_table`): trainable
  parameters of each size and variant, counted on the built Keras model, next to
  ``keras.applications`` built in the same run for the standard G1-BN network,
  with the residual statistics;
* notebook 06 writes the paper's multiply-add/parameter table (computed beside
  reported), the skip-connection table and the front-page-style figure
  (``paper_tables.write_tables``, also ``effnet tables``).

:func:`reproduce` writes all of these tables without running any notebook.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .notebook_results import atomic_write, markdown  # noqa: F401 (markdown: re-exported)
from .spec import PRESETS, EfficientNetSpec

VARIANTS = ("G1-BN", "G1-GN", "G16-GN", "G16-LN_PN")


def model_table(sizes=tuple(PRESETS), variants=VARIANTS, progress=True) -> pd.DataFrame:
    """Trainable parameters per size and variant, with the keras.applications count for G1-BN."""
    import keras

    from .efficientnet import build_model
    from .model_summary import count_weights, skip_statistics

    rows = []
    jobs = [(size, variant) for size in sizes for variant in variants]
    for size, variant in tqdm(jobs, desc="model table", disable=not progress):
        spec = EfficientNetSpec.from_name(f"{size}-{variant}")
        model = build_model(spec)
        row = dict(model=spec.name, size=size, variant=variant, resolution=spec.resolution,
                   expansion=spec.expand_ratio,
                   trainable_params_measured=count_weights(model.trainable_weights),
                   keras_applications_params_measured=None, **skip_statistics(spec))
        if variant == "G1-BN":
            reference = getattr(keras.applications, f"EfficientNet{size}")(weights=None)
            row["keras_applications_params_measured"] = count_weights(reference.trainable_weights)
            del reference
        rows.append(row)
        del model
        keras.backend.clear_session()
    table = pd.DataFrame(rows)
    table["keras_applications_params_measured"] = table["keras_applications_params_measured"].astype("Int64")
    table["skip_ratio"] = table["skip_ratio"].round(3)
    return table


def write_model_table(output_dir="figures", sizes=tuple(PRESETS), progress=True) -> list[Path]:
    """Write ``model_table.csv`` and ``model_table.md`` (see :func:`model_table`)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = model_table(sizes, progress=progress)
    return [write_atomic(out / "model_table.csv", table.to_csv(index=False)),
            write_atomic(out / "model_table.md", markdown(table))]


def reproduce(output_dir="figures", sizes=tuple(PRESETS), progress=True) -> list[Path]:
    """Every table of the main job, without the notebooks: the paper tables and the model table."""
    from .paper_tables import write_tables

    Path(output_dir).mkdir(parents=True, exist_ok=True)
    return write_tables(output_dir) + write_model_table(output_dir, sizes, progress)


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` via a temporary file and rename, so a crash never leaves half a file."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))
