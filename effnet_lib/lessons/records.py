"""What a lesson leaves behind: its figures, its tables and its key numbers.

Every lesson in ``notebooks/`` ends by saving what it showed, so that a headless
run (``effnet reproduce``) leaves files a person or a test can read back:

* ``save_figure(fig, output_dir, "02_group_size_speed")`` -> ``02_group_size_speed.png``
* ``save_table(df, output_dir, "02_group_size_speed")`` -> ``.csv`` and ``.md``
* ``record(output_dir, "02_group_convolutions", macs_b0=...)`` merges numbers into
  ``02_group_convolutions.json``; :func:`load_record` reads them back.

Every file is written aside and renamed (:mod:`effnet_lib.common.files`), so a
notebook killed mid-save never leaves half a file behind.

A lesson runs at a **budget**: ``smoke`` (seconds, for the tests), ``quick``
(minutes, ``make reproduce``) or ``full`` (hours).
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path

from ..common.files import save_figure, save_table, write_text

__all__ = ["BUDGETS", "check_budget", "load_record", "record", "save_figure", "save_table"]

BUDGETS = ("smoke", "quick", "full")


def check_budget(budget: str) -> str:
    """The run budget a notebook was given: ``smoke`` (seconds, for the tests),
    ``quick`` (minutes, ``make reproduce``) or ``full`` (hours)."""
    if budget not in BUDGETS:
        raise ValueError(f"budget={budget!r}: accepted {', '.join(BUDGETS)}.")
    return budget


def plain(value):
    """``value`` as JSON can hold it: numbers, strings, lists and dicts; no NaN."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"cannot record a non-finite number ({value}).")
        return value
    raise TypeError(f"cannot record {type(value).__name__!r}: use numbers, strings, lists or dicts.")


def record(output_dir, notebook: str, **numbers_) -> Path:
    """Merge key numbers into ``output_dir/notebook.json`` (the notebook's record)."""
    path = Path(output_dir) / f"{notebook}.json"
    current = load_record(output_dir, notebook) if path.exists() else {}
    current.update(plain(numbers_))
    return write_text(path, json.dumps(current, indent=2, sort_keys=True) + "\n")


def load_record(output_dir, notebook: str) -> dict:
    """The numbers a notebook recorded."""
    path = Path(output_dir) / f"{notebook}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: has notebook {notebook!r} run with "
                                f"output_dir={str(output_dir)!r}?")
    return json.loads(path.read_text())
