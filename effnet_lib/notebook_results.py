"""What a notebook leaves behind: its figures, its tables and its key numbers.

Every lesson in ``notebooks/`` ends by saving what it showed, so that a headless
run (``effnet reproduce``) leaves files a person or a test can read back:

* ``save_figure(fig, output_dir, "02_group_size_speed")`` -> ``02_group_size_speed.png``
* ``save_table(df, output_dir, "02_group_size_speed")`` -> ``.csv`` and ``.md``
* ``record(output_dir, "02_group_convolutions", macs_b0=...)`` merges numbers into
  ``02_group_convolutions.json``; :func:`load_record` reads them back.

Every file is written aside and renamed, so a notebook killed mid-save never
leaves half a file behind.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path

import pandas as pd

PROFILES = ("smoke", "quick", "full")


def check_profile(profile: str) -> str:
    """The run profile a notebook was given: ``smoke`` (seconds, for the tests),
    ``quick`` (minutes, ``make reproduce``) or ``full`` (hours)."""
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r}: accepted {', '.join(PROFILES)}.")
    return profile


def atomic_write(path, write) -> Path:
    """Call ``write(tmp_path)``, then rename the temporary file to ``path``: a crash never
    leaves half a file, and a failed write leaves the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def save_figure(fig, output_dir, name: str, dpi: int = 120) -> Path:
    """Save a matplotlib figure as ``output_dir/name.png``."""
    path = Path(output_dir) / f"{name}.png"
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight",
                                                       format="png"))


def save_table(table: pd.DataFrame, output_dir, name: str) -> list[Path]:
    """Save a table as ``output_dir/name.csv`` and ``output_dir/name.md``."""
    base = Path(output_dir) / name
    return [atomic_write(base.with_suffix(".csv"), lambda t: table.to_csv(t, index=False)),
            atomic_write(base.with_suffix(".md"), lambda t: t.write_text(markdown(table)))]


def markdown(table: pd.DataFrame) -> str:
    """A Markdown table with blanks, not "nan", where a value does not apply."""
    shown = table.astype(object).where(table.notna(), "")
    return shown.to_markdown(index=False) + "\n"


def _plain(value):
    # JSON has no numpy types and no NaN; say so loudly rather than write "NaN".
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
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
    current.update(_plain(numbers_))
    text = json.dumps(current, indent=2, sort_keys=True) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def load_record(output_dir, notebook: str) -> dict:
    """The numbers a notebook recorded."""
    path = Path(output_dir) / f"{notebook}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: has notebook {notebook!r} run with "
                                f"output_dir={str(output_dir)!r}?")
    return json.loads(path.read_text())
