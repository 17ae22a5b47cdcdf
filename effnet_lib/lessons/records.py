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

import datetime
import json
import math
import numbers
import os
from pathlib import Path

from ..common.files import save_figure, save_table, write_text

__all__ = ["BUDGETS", "check_budget", "load_record", "load_run_records", "record", "save_figure",
           "save_table"]
RUN_ID_VARIABLE = "EFFNET_RUN_ID"  # set by the runner (effnet reproduce) for every kernel
# Run by hand, a kernel is its own run: its records replace those an earlier kernel left.
BY_HAND_RUN_ID = (f"by hand (pid {os.getpid()}, "
                  f"{datetime.datetime.now().isoformat(timespec='seconds')})")

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
    if type(value).__name__ == "bool_":  # NumPy's booleans are not Python's
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"cannot record a non-finite number ({value}).")
        return value
    raise TypeError(f"cannot record {type(value).__name__!r}: use numbers, strings, lists or dicts.")


def record(output_dir, notebook: str, **numbers_) -> Path:
    """Merge key numbers into ``output_dir/notebook.json`` (the notebook's record).

    Every record also says which run wrote it (``run``: the id of ``effnet reproduce``'s run,
    or ``"by hand (pid, start)"`` for a kernel run by hand, and when), so that a notebook
    reading others' records can keep to its own run. Numbers merge within one run only: the
    first ``record`` of a new run starts the file afresh, so that keys an earlier version of
    the lesson wrote do not outlive it.
    """
    path = Path(output_dir) / f"{notebook}.json"
    run_id = os.environ.get(RUN_ID_VARIABLE) or BY_HAND_RUN_ID
    current = load_record(output_dir, notebook) if path.exists() else {}
    if current.get("run", {}).get("id") != run_id:
        current = {}
    current.update(plain(numbers_))
    current["run"] = dict(id=run_id,
                          recorded_at=datetime.datetime.now().isoformat(timespec="seconds"))
    return write_text(path, json.dumps(current, indent=2, sort_keys=True) + "\n")


def load_record(output_dir, notebook: str) -> dict:
    """The numbers a notebook recorded."""
    path = Path(output_dir) / f"{notebook}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: has notebook {notebook!r} run with "
                                f"output_dir={str(output_dir)!r}?")
    return json.loads(path.read_text())


def load_run_records(output_dir, notebooks, budget: str, say=print) -> dict:
    """The records of ``notebooks`` written by this run: the same run id when the runner set
    one (``effnet reproduce``), else (run by hand) the same budget; says which it used.

    Returns ``{notebook: record}``; a notebook with no such record is left out, with a
    message saying why.
    """
    run_id = os.environ.get(RUN_ID_VARIABLE)
    found = {}
    for notebook in notebooks:
        try:
            data = load_record(output_dir, notebook)
        except FileNotFoundError:
            say(f"{notebook}: no record in {output_dir}; run it first.")
            continue
        run = data.get("run", {})
        if run_id and run.get("id") != run_id:
            say(f"{notebook}: its record is from another run ({run.get('id')}, "
                f"{run.get('recorded_at')}): left out.")
        elif data.get("budget") != budget:
            say(f"{notebook}: its record was made at budget {data.get('budget')!r}, not "
                f"{budget!r}: left out.")
        else:
            say(f"{notebook}: record of run {run.get('id')} ({run.get('recorded_at')}).")
            found[notebook] = data
    return found
