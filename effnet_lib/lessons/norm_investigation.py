"""Why does LN + Proxy Norm learn slower than GN here? Norms compared with seeds, one cause at a time.

The paper reports LN + Proxy Norm above GroupNorm at ImageNet scale (B0-G16: 79.4%
against 79.1% top-1); a 6-epoch run of the kit on its embedded data had LN_PN far below
GN. This study trains the same small EfficientNet with BN, GN, LN and LN_PN (G1 and G16)
on the embedded shapes data, several seeds each, with the paper's recipe (RMSprop as
TF1 ran it, coupled weight decay 1e-5, label smoothing 0.1, B0's Mixup 0.1, the 0.97
weight average, float32), and then changes one thing at a time for LN_PN: the learning
rate, Proxy Norm's 1/sigma placement (the reference code's "deferred" one), its epsilon,
and the number of epochs (accuracy after every epoch). Every figure is a mean over seeds
with its 95% interval (:mod:`effnet_lib.common.stats`).

What is adapted to a 2-core CPU, identically for every variant: a B0 at width and depth
0.5, 48 px images of the embedded data's "distinct" classes (silhouettes a small model
tells apart in minutes; the fine-detail classes matter for resolution, not here), ten
epochs over a few thousand images, a cosine schedule with one warm-up epoch, a peak
learning rate of ``2^-10`` per image (``2^-14`` is tuned for 350 epochs; the sweep moves
it) and crops keeping at least 35% of the image (:mod:`.small_scale`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..common.stats import mean_ci
from .run_cache import cached_train
from .small_scale import SMALL_MODEL, small_case

# What each budget trains: images per epoch come from the data; epochs and seeds here.
BUDGETS = {
    "smoke": dict(epochs=1, seeds=(0,), image_size=32, data=dict(train=96, validation=40)),
    "quick": dict(epochs=10, seeds=(0, 1, 2), image_size=48, data=dict(train=3200, validation=800)),
    "full": dict(epochs=20, seeds=(0, 1, 2, 3, 4), image_size=48,
                 data=dict(train=10000, validation=2000)),
}
LEARNING_RATE_EXPONENT = -10
SOURCE_SIZE = 64  # the generated images; training crops are resized to the budget's size


@dataclass(frozen=True)
class Variant:
    """One configuration of the study: a model, and what is changed from the base recipe."""

    label: str
    model: str
    spec: dict = field(default_factory=dict)  # EfficientNetSpec overrides (proxy_norm_scale ...)
    case: dict = field(default_factory=dict)  # CaseConfig overrides (base_learning_rate_exponent ...)

    @property
    def norm(self) -> str:
        return self.model.split("-")[2]

    @property
    def group(self) -> str:
        return self.model.split("-")[1]


def norm_variants(size: str = "B0", groups=("G1", "G16"), norms=("BN", "GN", "LN", "LN_PN")):
    """Every norm at every group size, with the base recipe."""
    return [Variant(f"{size}-{g}-{n}", f"{size}-{g}-{n}") for g in groups for n in norms]


def ln_pn_variants(model: str = "B0-G1-LN_PN", reference: str = "B0-G1-GN"):
    """One change at a time, for LN_PN, with the same changes to GN where they apply."""
    lower, higher = LEARNING_RATE_EXPONENT - 1, LEARNING_RATE_EXPONENT + 1
    return [
        Variant(f"{model} lr 2^{lower}", model, case=dict(base_learning_rate_exponent=lower)),
        Variant(f"{model} lr 2^{higher}", model, case=dict(base_learning_rate_exponent=higher)),
        Variant(f"{reference} lr 2^{lower}", reference, case=dict(base_learning_rate_exponent=lower)),
        Variant(f"{reference} lr 2^{higher}", reference,
                case=dict(base_learning_rate_exponent=higher)),
        Variant(f"{model} deferred 1/sigma", model, spec=dict(proxy_norm_scale="deferred")),
        Variant(f"{model} proxy eps 0.003", model, spec=dict(proxy_epsilon=0.003)),
        Variant(f"{model} proxy eps 0.3", model, spec=dict(proxy_epsilon=0.3)),
    ]


def study_data(budget: str, seed: int = 0) -> str:
    """The embedded shapes set the study trains on, generated once at the budget's size."""
    from ..common.paths import data_dir
    from ..data.shapes import make_shapes

    counts = BUDGETS[budget]["data"]
    path = data_dir() / (f"study-shapes-distinct-{SOURCE_SIZE}px-10c-{counts['train']}-"
                         f"{counts['validation']}-seed{seed}")
    make_shapes(path, image_size=SOURCE_SIZE, classes=10, seed=seed, progress=False,
                class_set="distinct", **counts)
    return f"shapes:{path}"


def study_case(variant: Variant, budget: str):
    settings = BUDGETS[budget]
    case = small_case(variant.model, image_size=settings["image_size"], epochs=settings["epochs"],
                      base_learning_rate_exponent=LEARNING_RATE_EXPONENT)
    # B0's own Mixup (0.1) and the default coupled weight decay: the paper's recipe.
    return case.replace(mixup_alpha=0.1, **variant.case)


def run_variants(variants, data: str, budget: str = "quick", seeds=None, say=print) -> pd.DataFrame:
    """Train every variant with every seed (cached); one row per run."""
    settings = BUDGETS[budget]
    rows = []
    for variant in variants:
        case = study_case(variant, budget)
        for seed in seeds or settings["seeds"]:
            say(f"{variant.label}, seed {seed}")
            run = cached_train(case, data, seed=seed, say=say, validate_every_epoch=True,
                               model_overrides={**SMALL_MODEL, **variant.spec})
            curve = [line.get("val_top1") for line in run["log"]]
            rows.append(dict(label=variant.label, model=variant.model, norm=variant.norm,
                             group=variant.group, seed=seed, epochs=int(case.epochs),
                             top1=run["validation"]["top1"], top5=run["validation"]["top5"],
                             top1_average=run["validation"].get("average", {}).get("top1"),
                             top1_by_epoch=curve, train_loss=run["log"][-1]["loss"],
                             seconds=run["seconds"], reused=run["reused"]))
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame, column: str = "top1") -> pd.DataFrame:
    """Mean, 95% interval and spread per variant, in the order the variants ran."""
    rows = []
    for label, part in runs.groupby("label", sort=False):
        estimate = mean_ci(part[column])
        rows.append(dict(label=label, model=part.model.iloc[0], seeds=estimate.n,
                         mean=round(estimate.mean, 4), ci95=round(estimate.half_width, 4),
                         low=round(estimate.low, 4), high=round(estimate.high, 4),
                         min=round(part[column].min(), 4), max=round(part[column].max(), 4)))
    return pd.DataFrame(rows)


def curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Validation top-1 after every epoch: mean and 95% interval over seeds, per variant."""
    rows = []
    for label, part in runs.groupby("label", sort=False):
        for epoch in range(len(part.top1_by_epoch.iloc[0])):
            estimate = mean_ci([curve[epoch] for curve in part.top1_by_epoch])
            rows.append(dict(label=label, epoch=epoch + 1, mean=estimate.mean,
                             ci95=estimate.half_width))
    return pd.DataFrame(rows)


# The questions the study answers, each a paired difference (by seed) between two variants.
QUESTIONS = (
    ("LN_PN against GN, G1", "B0-G1-LN_PN", "B0-G1-GN"),
    ("LN_PN against GN, G16 (the paper's comparison)", "B0-G16-LN_PN", "B0-G16-GN"),
    ("deferred 1/sigma against the kit's placement (LN_PN, G1)", "B0-G1-LN_PN deferred 1/sigma",
     "B0-G1-LN_PN"),
    ("BN against GN, G1", "B0-G1-BN", "B0-G1-GN"),
    ("LN against LN_PN, G1 (what Proxy Norm adds)", "B0-G1-LN", "B0-G1-LN_PN"),
    (f"LN_PN at lr 2^{LEARNING_RATE_EXPONENT - 1} against 2^{LEARNING_RATE_EXPONENT}",
     f"B0-G1-LN_PN lr 2^{LEARNING_RATE_EXPONENT - 1}", "B0-G1-LN_PN"),
    (f"LN_PN at lr 2^{LEARNING_RATE_EXPONENT + 1} against 2^{LEARNING_RATE_EXPONENT}",
     f"B0-G1-LN_PN lr 2^{LEARNING_RATE_EXPONENT + 1}", "B0-G1-LN_PN"),
    (f"GN at lr 2^{LEARNING_RATE_EXPONENT - 1} against 2^{LEARNING_RATE_EXPONENT}",
     f"B0-G1-GN lr 2^{LEARNING_RATE_EXPONENT - 1}", "B0-G1-GN"),
    (f"GN at lr 2^{LEARNING_RATE_EXPONENT + 1} against 2^{LEARNING_RATE_EXPONENT}",
     f"B0-G1-GN lr 2^{LEARNING_RATE_EXPONENT + 1}", "B0-G1-GN"),
    ("Proxy Norm eps 0.003 against the default", "B0-G1-LN_PN proxy eps 0.003", "B0-G1-LN_PN"),
    ("Proxy Norm eps 0.3 against the default", "B0-G1-LN_PN proxy eps 0.3", "B0-G1-LN_PN"),
)


def findings(runs: pd.DataFrame, column: str = "top1") -> pd.DataFrame:
    """Each question of :data:`QUESTIONS` the runs can answer, and the doubled-epoch gap: the
    difference ``a - b`` paired by seed, its 95% interval, and what the interval says
    (``a higher``, ``a lower`` or ``no clear difference``), computed, never typed."""
    questions = list(QUESTIONS)
    longer = sorted({label for label in runs.label if label.endswith(" epochs")})
    if {"B0-G1-LN_PN", "B0-G1-GN"} <= set(runs.label):
        pairs = [label for label in longer if label.startswith("B0-G1-LN_PN ")]
        for label in pairs:
            other = label.replace("B0-G1-LN_PN", "B0-G1-GN")
            if other in set(runs.label):
                questions.append((f"LN_PN against GN after {label.split()[1]} epochs (G1)",
                                  label, other))
    rows = []
    for question, a, b in questions:
        first = runs[runs.label == a].set_index("seed")[column]
        second = runs[runs.label == b].set_index("seed")[column]
        paired = (first - second).dropna()
        if len(paired) == 0:
            continue
        estimate = mean_ci(paired)
        if len(paired) > 1 and estimate.low > 0:
            says = "a higher"
        elif len(paired) > 1 and estimate.high < 0:
            says = "a lower"
        else:
            says = "no clear difference" if len(paired) > 1 else "one seed: no interval"
        rows.append(dict(question=question, a=a, b=b, seeds=len(paired),
                         difference=round(estimate.mean, 4),
                         low=round(estimate.low, 4) if len(paired) > 1 else None,
                         high=round(estimate.high, 4) if len(paired) > 1 else None, says=says))
    return pd.DataFrame(rows)


def readme_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """The per-variant table as the study page (docs/ln-pn-study.md) shows it."""
    table = summarise(runs)
    return pd.DataFrame({"variant": table.label, "seeds": table.seeds,
                         "top-1, mean [95% interval]": [f"{m:.3f} [{lo:.3f}, {hi:.3f}]"
                                                        for m, lo, hi in zip(table["mean"], table.low, table.high)],
                         "range": [f"{a:.3f}-{b:.3f}" for a, b in zip(table["min"], table["max"])]})


def readme_findings(runs: pd.DataFrame) -> pd.DataFrame:
    """The paired differences as the study page shows them."""
    table = findings(runs)
    interval = [f"[{lo:+.3f}, {hi:+.3f}]" if pd.notna(lo) else "" for lo, hi in zip(table.low, table.high)]
    return pd.DataFrame({"question": table.question, "seeds": table.seeds,
                         "a - b, top-1": [f"{d:+.3f}" for d in table.difference],
                         "95% interval": interval, "says": table.says})


README_BEGIN = "<!-- ln_pn_study: written by `python -m effnet_lib.lessons.norm_investigation --write-readme docs/ln-pn-study.md` -->"
README_END = "<!-- ln_pn_study: end -->"


def readme_section(runs: pd.DataFrame) -> str:
    """The study page's tables, written from the runs (between :data:`README_BEGIN` and
    :data:`README_END`): per variant, then the paired differences, and which variants of
    the plan have not run yet."""
    from ..common.files import markdown

    planned = [variant.label for variant, _ in study_variants("quick")]
    missing = [label for label in planned if label not in set(runs.label)]
    epochs = ", ".join(str(e) for e in sorted(runs.epochs.unique()))
    text = [README_BEGIN, "",
            f"{len(runs)} runs ({runs.label.nunique()} variants, {epochs} epochs); final top-1 on the "
            "validation images, mean over seeds with its 95% interval (t distribution) and the range:",
            "", markdown(readme_summary(runs)).rstrip(), "",
            "Paired by seed (a - b for runs of the same seed), mean and 95% interval:", "",
            markdown(readme_findings(runs)).rstrip(), ""]
    if missing:
        text += [f"Not run yet (the study was stopped here; `--keep-recorded` goes on from the "
                 f"runs above): {', '.join(missing)}.", ""]
    if "code" in runs and runs.code.nunique() > 1:
        text += [f"The runs come from {runs.code.nunique()} versions of the kit's code (the "
                 "`code` column of `figures/ln_pn_study_runs.csv`).", ""]
    text.append(README_END)
    return "\n".join(text)


def write_readme(path, runs: pd.DataFrame) -> None:
    """Replace the study's block in the Markdown page at ``path`` with :func:`readme_section`."""
    from ..common.files import replace_block

    section = readme_section(runs)
    replace_block(path, README_BEGIN, README_END, section[len(README_BEGIN):-len(README_END)])


def study_variants(budget: str = "quick") -> list[tuple[Variant, tuple]]:
    """(variant, seeds) in the order they run, most telling first, so that a study stopped
    part-way has already answered the main question: GN against LN_PN (G1, then the paper's
    G16), the deferred 1/sigma, the other norms (G1, then G16), then one change at a time:
    LN_PN's learning rate, twice the epochs (does the gap close?), Proxy Norm's epsilon,
    GN's learning rate (fewer seeds where the budget cannot afford three)."""
    seeds = BUDGETS[budget]["seeds"]
    few = seeds[:2]

    def base(group, norms):
        return [(Variant(f"B0-{group}-{n}", f"B0-{group}-{n}"), seeds) for n in norms]

    changes = ln_pn_variants()
    deferred = [(v, seeds) for v in changes if "deferred" in v.label]
    ln_pn_rates = [(v, few) for v in changes if " lr " in v.label and "LN_PN" in v.label]
    gn_rates = [(v, few) for v in changes if " lr " in v.label and "LN_PN" not in v.label]
    epsilons = [(v, few) for v in changes if "eps" in v.label]
    longer = BUDGETS[budget]["epochs"] * 2
    epochs = [(Variant(f"{model} {longer} epochs", model, case=dict(epochs=longer)), few)
              for model in ("B0-G1-LN_PN", "B0-G1-GN")]
    return (base("G1", ("GN", "LN_PN")) + base("G16", ("GN", "LN_PN")) + deferred
            + base("G1", ("BN", "LN")) + base("G16", ("BN", "LN")) + ln_pn_rates + epochs
            + epsilons + gn_rates)


def write_tables(runs: pd.DataFrame, output_dir) -> list:
    """The study's tables (runs, summary, weight-average summary, curves) in ``output_dir``."""
    from pathlib import Path

    from ..common.files import save_table

    out = Path(output_dir)
    written = save_table(runs.drop(columns=["top1_by_epoch"]).assign(
        top1_by_epoch=[" ".join(f"{v:.3f}" for v in c) for c in runs.top1_by_epoch]), out,
        "ln_pn_study_runs")
    written += save_table(summarise(runs), out, "ln_pn_study")
    written += save_table(summarise(runs, "top1_average"), out, "ln_pn_study_weight_average")
    written += save_table(curves(runs), out, "ln_pn_study_curves")
    written += save_table(findings(runs), out, "ln_pn_study_findings")
    return written


def main(budget: str = "quick", output_dir="figures", say=print, keep_recorded: bool = False) -> list:
    """Run the whole study, rewriting its tables in ``output_dir`` after every variant: a
    study stopped part-way leaves the variants it finished, each with all its seeds.

    ``keep_recorded`` continues the study recorded in ``output_dir`` instead of starting
    afresh: a (variant, seed) already there keeps its row, with the ``code`` fingerprint
    that trained it, and only the missing ones train. The run cache cannot do this once the
    code has changed (its keys hold the code's fingerprint); the ``code`` column keeps the
    mix visible."""
    from .run_cache import code_fingerprint

    code_fingerprint()  # now, before any training: the code this process runs
    recorded = recorded_study(output_dir) if keep_recorded else None
    data = study_data(budget)
    frames, written = [], []
    for variant, seeds in study_variants(budget):
        kept = pd.DataFrame()
        if recorded is not None:
            expected = study_case(variant, budget).epochs
            kept = recorded[(recorded.label == variant.label) & recorded.seed.isin(seeds)
                            & (recorded.epochs == expected)]
            if len(kept):
                say(f"{variant.label}: kept seeds {sorted(kept.seed)} from the recorded study")
        missing = [seed for seed in seeds if seed not in set(kept.get("seed", []))]
        new = (run_variants([variant], data, budget, seeds=missing, say=say).assign(
            code=code_fingerprint()) if missing else pd.DataFrame())
        frames.append(pd.concat([kept, new], ignore_index=True).sort_values("seed"))
        written = write_tables(pd.concat(frames, ignore_index=True), output_dir)
    return written


def recorded_study(directory=None) -> pd.DataFrame | None:
    """The per-run table the study last wrote into the kit's ``figures/`` (or ``directory``),
    with ``top1_by_epoch`` as lists; None where there is none (an installed kit, or a clone
    where the study has not run)."""
    from pathlib import Path

    path = Path(directory or Path(__file__).resolve().parents[2] / "figures") / "ln_pn_study_runs.csv"
    if not path.is_file():
        return None
    runs = pd.read_csv(path)
    runs["top1_by_epoch"] = [[float(v) for v in str(c).split()] for c in runs.top1_by_epoch]
    return runs


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", choices=tuple(BUDGETS), default="quick")
    parser.add_argument("--output-dir", default="figures")
    parser.add_argument("--keep-recorded", action="store_true",
                        help="go on from the runs recorded in --output-dir: train only the "
                             "(variant, seed) pairs missing there")
    parser.add_argument("--write-readme", metavar="PAGE",
                        help="only rewrite the study's tables in this Markdown page (the kit's: "
                             "docs/ln-pn-study.md) from the runs recorded in --output-dir; "
                             "train nothing")
    arguments = parser.parse_args()
    if arguments.write_readme:
        recorded = recorded_study(arguments.output_dir)
        if recorded is None:
            parser.error(f"no ln_pn_study_runs.csv in {arguments.output_dir}: run the study first")
        write_readme(arguments.write_readme, recorded)
        print(f"wrote the study's tables into {arguments.write_readme}")
    else:
        for path in main(arguments.budget, arguments.output_dir, keep_recorded=arguments.keep_recorded):
            print(f"wrote {path}")
