"""The paper's front-page figure, redrawn: reported accuracy against multiply-adds computed here."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..common.files import save_figure
from ..models.spec import HALF_RESOLUTION, PRESETS
from ..profiling import profile
from .results import SIZES, reported



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
    path = Path(path)
    saved = save_figure(fig, path.parent, path.stem)
    plt.close(fig)
    return saved
