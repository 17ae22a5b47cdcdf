"""``effnet tables | reproduce``: the paper's tables, and every lesson run headless."""

from __future__ import annotations

import sys

from .common import quiet_backend


def add_commands(sub) -> None:
    tables = sub.add_parser(
        "tables", help="the paper's multiply-add/parameter tables and front-page figure",
        description="Write to --output-dir: multiply-adds and parameters of B0-B5 x {G1-GN, "
                    "G16-GN, G16-LN_PN} x {native, half}, computed here beside the paper's "
                    "reported values (CSV, Markdown); residual statistics; and reported accuracy "
                    "against computed multiply-adds (PNG).")
    tables.add_argument("--output-dir", default="figures", help="where results go (default figures/)")
    tables.set_defaults(func=run_tables)

    reproduce = sub.add_parser(
        "reproduce", help="run the notebooks headless: every table and figure into figures/",
        description="The main job: execute notebooks/NN_*.ipynb with papermill (executed copies "
                    "in build/notebooks/, the sources untouched); they write their figures, tables "
                    "and key numbers (NN_name.json) to --output-dir. A failing notebook does not "
                    "stop the others; the exit status is 1 if any failed.")
    reproduce.add_argument("--budget", choices=("smoke", "quick", "full"), default=None,
                           help="smoke: seconds per notebook (tests); quick (default): minutes; "
                                "full: hours")
    reproduce.add_argument("--profile", dest="old_budget_flag", choices=("smoke", "quick", "full"),
                           help="the old name of --budget (deprecated)")
    reproduce.add_argument("--notebooks", metavar="NN,NN", help="only these numbers, e.g. 02,04")
    reproduce.add_argument("--jobs", type=int, default=1, help="notebooks run in parallel (default 1)")
    reproduce.add_argument("--output-dir", default="figures", help="where results go (default figures/)")
    reproduce.add_argument("--build-dir", default="build/notebooks",
                           help="where the executed notebooks go (default build/notebooks/)")
    reproduce.add_argument("--data", default="shapes",
                           help="data source for the notebooks that train: shapes (default), "
                                "shapes:PATH, folder:PATH, imagenet:PATH, tfds:NAME")
    reproduce.add_argument("--seed", type=int, default=0, help="seeds every lesson's training")
    reproduce.set_defaults(func=run_reproduce)


def run_tables(args):
    from ..paper.tables import write_tables

    for path in write_tables(args.output_dir):
        print(f"wrote {path}")


def run_reproduce(args):
    quiet_backend()
    from ..lessons.runner import run_notebooks

    budget = args.budget
    if args.old_budget_flag:
        print("effnet reproduce: --profile is now --budget (the word 'profile' belongs to the "
              "profiler); it still works for now.", file=sys.stderr)
        if budget and budget != args.old_budget_flag:
            raise ValueError(f"--budget {budget} and --profile {args.old_budget_flag} disagree: "
                             f"give --budget only.")
        budget = budget or args.old_budget_flag
    budget = budget or "quick"
    if budget == "full":
        print("budget full: the notebooks train for real; this may take hours on a CPU.", flush=True)
    result = run_notebooks(budget=budget, notebooks=args.notebooks, jobs=args.jobs,
                           output_dir=args.output_dir, build_dir=args.build_dir, data=args.data,
                           seed=args.seed)
    return 0 if result.ok else 1
