"""The paper's reported numbers, stored as data with their source.

``reported_results.csv`` (beside this file, installed with the package) holds
top-1 accuracy, multiply-adds ("FLOPs") and IPU-POD16 training throughput per
size (B0-B5) and variant, digitised from the paper's front-page figure, each row
with its training resolution, its digitisation uncertainty and its source.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

REPORTED_RESULTS = Path(__file__).with_name("reported_results.csv")
SIZES = ("B0", "B1", "B2", "B3", "B4", "B5")  # the sizes the paper trains and reports


def reported(path: Path | str | None = None) -> pd.DataFrame:
    """The paper's reported numbers (``path``: another file of the same columns)."""
    path = Path(path or REPORTED_RESULTS)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: it holds the paper's reported numbers "
                                f"(reinstall effnet-kit, or pass the path of a copy).")
    return pd.read_csv(path)


def reported_value(metric: str, size: str, variant: str, results: pd.DataFrame | None = None):
    """``(value, source)`` of one reported number; a clear error when the table lacks it."""
    results = reported() if results is None else results
    hit = results[(results.metric == metric) & (results["size"] == size) & (results.variant == variant)]
    if hit.empty or pd.isna(hit.value.iloc[0]):
        raise KeyError(f"no reported {metric} for {size} {variant}")
    return float(hit.value.iloc[0]), str(hit.source.iloc[0])
