"""Verdicts on the paper's claims, computed from the numbers they describe.

Every lesson that touches a claim of the paper records one verdict per claim in its
record (``verdicts``), in one form:

* ``claim``: the claim in words;
* ``reported``: what the paper reports (a number or a short text), with ``source``;
* ``measured``: what this run measured (a number), and ``interval``: its 95% interval
  ``[low, high]`` (``None`` for an exact count);
* ``criterion``: how the two are compared, as data: ``{"kind": "above", "threshold": t}``
  (the claim holds when the interval lies above ``t``), ``"below"``, or ``"within"``
  (``{"low": a, "high": b}``: holds when the measurement lies inside; for counts);
  plus ``text``, the criterion in words;
* ``holds``: ``true``, ``false`` or ``"inconclusive"``, computed by :func:`judge` from the
  above, never typed.

Lesson 06 gathers every lesson's verdicts into ``verdicts.md`` and writes its prose from
that table.
"""

from __future__ import annotations

import math

import pandas as pd

from ..common.stats import Estimate

KINDS = ("above", "below", "within")
INCONCLUSIVE = "inconclusive"


def judge(criterion: dict, measured: float, interval=None):
    """``True``, ``False`` or ``"inconclusive"`` for a measurement under a criterion."""
    kind = criterion["kind"]
    if kind not in KINDS:
        raise ValueError(f"criterion kind {kind!r}: accepted {', '.join(KINDS)}.")
    low, high = (measured, measured) if interval is None else interval
    if kind == "within":
        return bool(criterion["low"] <= measured <= criterion["high"])
    threshold = criterion["threshold"]
    above, below = bool(low > threshold), bool(high < threshold)
    if kind == "below":
        above, below = below, above
    return True if above else False if below else INCONCLUSIVE


def verdict(claim: str, reported, source: str, measured, criterion: dict, interval=None,
            note: str = "") -> dict:
    """One verdict, ``holds`` computed. ``measured`` may be an :class:`Estimate` (its mean and
    interval are used, ``nan`` intervals count as none)."""
    if isinstance(measured, Estimate):
        interval = None if math.isnan(measured.half_width) else [measured.low, measured.high]
        measured = measured.mean
    if interval is not None:
        interval = [float(interval[0]), float(interval[1])]
    criterion = dict(criterion)
    criterion.setdefault("text", describe(criterion))
    return dict(claim=claim, reported=reported, source=source, measured=float(measured),
                interval=interval, criterion=criterion, holds=judge(criterion, measured, interval),
                note=note)


def describe(criterion: dict) -> str:
    kind = criterion["kind"]
    if kind == "within":
        return f"holds if the measurement lies in [{criterion['low']:g}, {criterion['high']:g}]"
    side = "above" if kind == "above" else "below"
    return (f"holds if the 95% interval lies {side} {criterion['threshold']:g}; fails if it lies "
            f"on the other side; inconclusive if it contains {criterion['threshold']:g}")


def table(verdicts: list[dict]) -> pd.DataFrame:
    """The verdicts as a table for people: one row per claim."""
    rows = []
    for v in verdicts:
        interval = v.get("interval")
        measured = f"{v['measured']:.4g}" + (
            f" [{interval[0]:.4g}, {interval[1]:.4g}]" if interval else " (exact)")
        rows.append({"lesson": v.get("lesson", ""), "claim": v["claim"],
                     "reported (paper)": v["reported"], "measured here (95% interval)": measured,
                     "criterion": v["criterion"]["text"], "verdict": label(v["holds"])})
    return pd.DataFrame(rows)


def label(holds) -> str:
    return {True: "holds", False: "does not hold"}.get(holds, INCONCLUSIVE)


def by_verdict(verdicts: list[dict]) -> dict[str, list[dict]]:
    """The verdicts grouped by their label: ``holds``, ``does not hold``, ``inconclusive``."""
    return {key: [v for v in verdicts if label(v["holds"]) == key]
            for key in ("holds", "does not hold", INCONCLUSIVE)}


def summary(verdicts: list[dict]) -> str:
    """Prose written from the verdicts: how many hold, fail and are inconclusive, and which."""
    groups = by_verdict(verdicts)
    parts = [f"Of {len(verdicts)} claims checked in this run, {len(groups['holds'])} hold, "
             f"{len(groups['does not hold'])} do not and {len(groups[INCONCLUSIVE])} are "
             f"inconclusive at 95%."]
    for key, title in (("holds", "Holding"), ("does not hold", "Not holding"),
                       (INCONCLUSIVE, "Inconclusive")):
        if groups[key]:
            parts.append(f"{title}: " + "; ".join(f"{v['claim']} (measured {v['measured']:.3g})"
                                                   for v in groups[key]) + ".")
    return "\n\n".join(parts)


README_BEGIN = ("<!-- results at a glance: written from figures/06_reproduce_paper.json by "
                "`python -m effnet_lib.lessons.verdicts --write-readme README.md` -->")
README_END = "<!-- results at a glance: end -->"
SHORT = {True: "✅ holds", False: "❌ does not hold", INCONCLUSIVE: "❔ inconclusive"}


def glance(verdicts: list[dict], budget: str) -> str:
    """The README's *Results at a glance*: one short row per verdict and the counts, written
    from the verdicts lesson 06 gathered (so the front page says what the run measured)."""
    from ..common.files import markdown

    rows = [{"lesson": v.get("lesson", ""), "the paper's claim": v["claim"],
             "paper": v["reported"],
             "here (95% interval)": f"{v['measured']:.3g}" + (
                 f" [{v['interval'][0]:.3g}, {v['interval'][1]:.3g}]" if v.get("interval")
                 else " (exact)"),
             "verdict": SHORT.get(v["holds"], SHORT[INCONCLUSIVE])} for v in verdicts]
    groups = by_verdict(verdicts)
    counts = {key: len(group) for key, group in groups.items()}
    named = "".join(f"\n{title}: " + "; ".join(v["claim"] for v in groups[key]) + ".\n"
                    for key, title in (("does not hold", "Not holding at this scale"),
                                       (INCONCLUSIVE, "Inconclusive in this run"))
                    if groups[key])
    return (f"\n{len(verdicts)} claims checked by `make reproduce` (budget {budget}): "
            f"{counts['holds']} hold, {counts['does not hold']} do not, "
            f"{counts[INCONCLUSIVE]} are inconclusive at 95%.\n\n"
            + markdown(pd.DataFrame(rows)).rstrip() + "\n" + named)


def write_readme(path, record_path) -> None:
    """Rewrite the README's glance block from lesson 06's record (``06_reproduce_paper.json``)."""
    import json
    from pathlib import Path

    from ..common.files import replace_block

    record = json.loads(Path(record_path).read_text())
    replace_block(path, README_BEGIN, README_END, glance(record["verdicts_gathered"],
                                                         record["budget"]))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write README's results at a glance from "
                                                 "lesson 06's record.")
    parser.add_argument("--write-readme", metavar="README", required=True)
    parser.add_argument("--record", default="figures/06_reproduce_paper.json")
    arguments = parser.parse_args()
    write_readme(arguments.write_readme, arguments.record)
    print(f"wrote the results at a glance into {arguments.write_readme}")
