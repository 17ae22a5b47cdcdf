"""The paper's model tables, computed here and set beside the reported numbers.

Reported values come from ``data/paper_results.csv`` (with their source);
computed values come from the profiler. Every table labels which is which.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .flops import profile
from .model_summary import skip_statistics
from .reproduce import markdown, write_atomic
from .spec import HALF_RESOLUTION, PRESETS, EfficientNetSpec

# The CSV lives in the repository's data/ (beside its README of sources), not in
# the package; an installed copy of the kit is pointed at it with the variable.
PAPER_RESULTS_VARIABLE = "EFFNET_PAPER_RESULTS"
PAPER_RESULTS = Path(__file__).resolve().parents[1] / "data" / "paper_results.csv"
SIZES = ("B0", "B1", "B2", "B3", "B4", "B5")
VARIANTS = ("G1-GN", "G16-GN", "G16-LN_PN")


def reported(path: Path | str | None = None) -> pd.DataFrame:
    """The paper's reported numbers: ``path``, else ``$EFFNET_PAPER_RESULTS``, else data/."""
    path = Path(path or os.environ.get(PAPER_RESULTS_VARIABLE) or PAPER_RESULTS)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: it holds the paper's reported numbers. Run from a clone of "
            f"effnet-kit (it is data/paper_results.csv there) or set {PAPER_RESULTS_VARIABLE} "
            f"to that file.")
    return pd.read_csv(path)


def flops_table(results: pd.DataFrame | None = None) -> pd.DataFrame:
    """Multiply-adds and parameters, computed and reported, for B0-B5 x variants x resolutions."""
    results = reported() if results is None else results
    macs = results[results.metric == "multiply_adds"]
    rows = []
    for size in SIZES:
        for variant in VARIANTS:
            for resolution in ("Native", "Half"):
                if variant == "G1-GN" and resolution == "Half":
                    continue  # the paper has no half-resolution G1 model
                image = PRESETS[size][2] if resolution == "Native" else HALF_RESOLUTION[size]
                prof = profile(f"{size}-{variant}", image_size=image)
                hit = macs[(macs["size"] == size) & (macs.variant == f"{variant}-{resolution}")]
                paper = float(hit.value.iloc[0]) if len(hit) else None
                computed = prof.macs / 1e9
                rows.append({"model": f"{size}-{variant}", "resolution": f"{resolution} ({image})",
                             "multiply_adds_G_computed": round(computed, 3),
                             "multiply_adds_G_reported": paper,
                             "computed_over_reported": round(computed / paper, 3) if paper else None,
                             "conv_dense_params_M_computed": round(prof.params / 1e6, 3),
                             "norm_params_K_computed": round(prof.norm_params / 1e3, 1)})
    return pd.DataFrame(rows)


def skip_table() -> pd.DataFrame:
    return pd.DataFrame([{"model": size, **skip_statistics(EfficientNetSpec.preset(size))}
                         for size in PRESETS]).round({"skip_ratio": 3})


def front_page_figure(path: Path, results: pd.DataFrame | None = None) -> Path:
    """Reported top-1 accuracy against computed multiply-adds, in the style of the paper's figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = reported() if results is None else results
    accuracy = results[results.metric == "top1_accuracy"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for variant, marker in [("G1-GN-Native", "o"), ("G16-GN-Native", "s"), ("G16-GN-Half", "^"),
                            ("G16-LN_PN-Native", "D"), ("G16-LN_PN-Half", "v")]:
        model = variant.rsplit("-", 1)[0]
        points = []
        for size in SIZES:
            image = PRESETS[size][2] if variant.endswith("Native") else HALF_RESOLUTION[size]
            acc = accuracy[(accuracy["size"] == size) & (accuracy.variant == variant)].value
            points.append((profile(f"{size}-{model}", image_size=image).macs / 1e9, float(acc.iloc[0])))
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker=marker, label=variant)
    ax.set_xscale("log")
    ax.set_xlabel("multiply-adds per image at the training resolution (G, computed here)")
    ax.set_ylabel("ImageNet top-1 (%, reported by the paper)")
    ax.set_title("Reported accuracy against computed multiply-adds")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_tables(output_dir="figures") -> list[Path]:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    flops, skips = flops_table(), skip_table()
    return [write_atomic(out / "flops_params.csv", flops.to_csv(index=False)),
            write_atomic(out / "flops_params.md", markdown(flops)),
            write_atomic(out / "skip_connections.csv", skips.to_csv(index=False)),
            write_atomic(out / "skip_connections.md", markdown(skips)),
            front_page_figure(out / "front_page.png")]


def throughput_table(measured: pd.DataFrame, size: str = "B0",
                     results: pd.DataFrame | None = None) -> pd.DataFrame:
    """Images/s measured here beside the paper's IPU-POD16 training images/s, per variant.

    ``measured`` is a :func:`effnet_lib.benchmark.measure_variants` table whose
    ``label`` names the paper's variant (``"G1-GN-Native"``, ``"G16-LN_PN-Half"``...).
    The two are different hardware, so each column is also given relative to the
    G1-GN-Native row *of its own hardware*: those speed-ups are what can be compared.
    """
    results = reported() if results is None else results
    ipu = results[(results.metric == "ipu_pod16_train_throughput") & (results["size"] == size)]
    rows = []
    for row in measured.itertuples():
        hit = ipu[ipu.variant == row.label].value
        rows.append({"variant": row.label, "model": row.model,
                     "reported_resolution": int(ipu[ipu.variant == row.label].train_resolution.iloc[0])
                     if len(hit) else None,
                     "reported_ipu_pod16_images_per_s": float(hit.iloc[0]) if len(hit) and
                     pd.notna(hit.iloc[0]) else None,
                     "measured_here_resolution": int(row.image_size),
                     "measured_here_images_per_s": round(float(row.images_per_s), 2),
                     "measured_here_mode": row.mode})
    table = pd.DataFrame(rows)
    for column, ratio in (("reported_ipu_pod16_images_per_s", "reported_speedup_vs_G1_GN"),
                          ("measured_here_images_per_s", "measured_speedup_vs_G1_GN")):
        base = table.loc[table.variant == "G1-GN-Native", column]
        table[ratio] = (table[column] / float(base.iloc[0])).round(3) if len(base) and \
            pd.notna(base.iloc[0]) else None
    return table
