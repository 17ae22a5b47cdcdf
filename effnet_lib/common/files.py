"""Writing results: every file aside first, then renamed, so a crash never leaves half of one.

* :func:`atomic_write` is the one writer every other function here (and the rest
  of the kit) goes through;
* :func:`write_text`, :func:`save_table` (CSV + Markdown), :func:`save_figure` (PNG)
  and :func:`markdown` (a table with blanks where a value does not apply).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd


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


def write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def markdown(table: pd.DataFrame) -> str:
    """A Markdown table with blanks, not "nan", where a value does not apply."""
    shown = table.astype(object).where(table.notna(), "")
    return shown.to_markdown(index=False) + "\n"


def save_table(table: pd.DataFrame, output_dir, name: str) -> list[Path]:
    """Save a table as ``output_dir/name.csv`` and ``output_dir/name.md``."""
    base = Path(output_dir) / name
    return [atomic_write(base.with_suffix(".csv"), lambda t: table.to_csv(t, index=False)),
            write_text(base.with_suffix(".md"), markdown(table))]


def save_figure(fig, output_dir, name: str, dpi: int = 120) -> Path:
    """Save a matplotlib figure as ``output_dir/name.png``."""
    path = Path(output_dir) / f"{name}.png"
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight",
                                                       format="png"))


def replace_block(path, begin: str, end: str, text: str) -> Path:
    """Replace what lies between the marker lines ``begin`` and ``end`` in the text file
    ``path`` (a README's generated tables) with ``text`` (as it is: start and end it with
    a newline to keep the markers on lines of their own); the rest stays as it is."""
    path = Path(path)
    old = path.read_text()
    if begin not in old or end not in old:
        raise ValueError(f"{path} has no generated block: add the lines {begin!r} and {end!r} "
                         f"where it goes.")
    before, rest = old.split(begin, 1)
    return write_text(path, before + begin + text + end + rest.split(end, 1)[1])
