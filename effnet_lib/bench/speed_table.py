"""The README's speed table, written from recorded ``effnet benchmark`` runs (their JSON).

``python -m effnet_lib.bench.speed_table --write-readme README.md RUN.json ...`` rewrites
the block between :data:`README_BEGIN` and :data:`README_END`; a test regenerates it from
the same files, so the front page quotes the measurement and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

README_BEGIN = ("<!-- speed beside keras.applications and timm: written from figures/benchmarks/ "
                "by `python -m effnet_lib.bench.speed_table --write-readme README.md FILE.json ...` -->")
README_END = "<!-- speed beside keras.applications and timm: end -->"
REFERENCE_NAMES = {"keras": "keras.applications", "timm": "timm"}
MODE_NAMES = {"train": "training", "infer": "inference"}


def _speed(row) -> str:
    return f"{row['images_per_s']:.3g} ({row['images_per_s_min']:.3g}-{row['images_per_s_max']:.3g})"


def _ratio(value) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.2f}x"


def speed_table(records: list[dict], names: list[str]) -> str:
    """One Markdown table of the runs in ``records`` (each a benchmark's JSON, ``names`` their
    file names): images/s with the runs' range, the ratios timed alternately (paired),
    the utilisation; then where and when each run was measured."""
    from ..common.files import markdown

    rows, sources = [], []
    for record, name in zip(records, names):
        table = pd.DataFrame(record["results"])
        env = record["environment"]
        for mode in table["mode"].unique():
            at = table[table["mode"] == mode].set_index("implementation")
            ours = at.loc["effnet-kit"]
            exported = " (exported)" if env.get("request", {}).get("exported") else ""
            row = {"model": ours["model"] + exported, "mode": MODE_NAMES[mode],
                   "effnet-kit images/s": _speed(ours)}
            for reference, label in REFERENCE_NAMES.items():
                row[f"{label} images/s"] = _speed(at.loc[reference]) if reference in at.index else ""
            for reference, label in REFERENCE_NAMES.items():
                row[f"kit / {label} (paired)"] = _ratio(ours.get(f"speed_vs_{reference}_paired"))
            row["utilisation (kit)"] = f"{ours['utilisation']:.0%}"
            rows.append(row)
        versions = ", ".join(f"{package} {version}" for package, version in env["versions"].items()
                             if version and package in ("tensorflow", "tensorflow-cpu", "keras",
                                                        "torch", "timm"))
        first = table.iloc[0]
        sources.append(f"- {first['model']}: {first['image_size']} px, batch {first['batch_size']}, "
                       f"precision {first['precision']}, {env['date'][:10]}, {env['cpu']} "
                       f"({env['cpu_count']} cores), {versions}; matrix-product yardstick "
                       f"{env['matmul_macs_per_s'] / 1e9:.1f} G multiply-adds/s; "
                       f"`figures/benchmarks/{name}`")
        sources += [f"  - {note}" for note in record.get("notes", [])]
    return markdown(pd.DataFrame(rows)) + "\n" + "\n".join(sources)


def write_readme(path, record_paths) -> None:
    """Rewrite the README's speed block from the benchmark JSON files ``record_paths``."""
    from ..common.files import replace_block

    paths = [Path(p) for p in record_paths]
    records = [json.loads(p.read_text()) for p in paths]
    replace_block(path, README_BEGIN, README_END,
                  "\n" + speed_table(records, [p.name for p in paths]) + "\n")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write README's speed table from recorded "
                                                 "`effnet benchmark` runs.")
    parser.add_argument("--write-readme", metavar="README", required=True)
    parser.add_argument("records", nargs="+", metavar="FILE.json")
    arguments = parser.parse_args()
    write_readme(arguments.write_readme, arguments.records)
    print(f"wrote the speed table into {arguments.write_readme}")
