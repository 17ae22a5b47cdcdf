"""``effnet train | validate | finetune``: the paper's recipe, resumable, and its last steps.

``effnet train`` takes a case and overrides any of its fields: the options are
generated from :class:`effnet_lib.training.cases.CaseConfig`'s fields and their
``help``, under the IPU kit's names where it had one (``--batch-size`` for the
micro-batch), so a new case field is a new option without a line here.
"""

from __future__ import annotations

import argparse
import dataclasses

from .common import DATA_SOURCES, PRECISION_HELP, CommaList, boolean, frame, int_list, quiet_backend

CASE_DEST = "case."  # prefix of the generated options' destinations


def add_case_options(parser) -> None:
    """One option per case field; absent options leave the case's value."""
    from ..common.precision import PRECISION_NAMES, SHORT_NAMES
    from ..training.cases import CaseConfig

    group = parser.add_argument_group(
        "case settings", "override any setting of the case (default: the case's own; "
                         "`effnet cases` and configs.yml show them)")
    for field in dataclasses.fields(CaseConfig):
        meta = field.metadata
        if meta.get("cli") is False:
            continue
        plain = "--" + field.name.replace("_", "-")
        flags = [meta["flag"], plain] if meta.get("flag") else [plain]
        options = dict(dest=CASE_DEST + field.name, default=argparse.SUPPRESS, help=meta["help"],
                       metavar=field.name.upper())
        if field.name == "precision":  # the one spelling every command shares
            options.update(choices=PRECISION_NAMES, type=lambda v: SHORT_NAMES.get(v, v),
                           metavar="PRECISION", help=f"{meta['help']}: {PRECISION_HELP}")
        elif "choices" in meta:
            options.update(choices=meta["choices"], metavar=None)
        kind = str(field.type)
        if kind.startswith("tuple[str"):
            options.update(nargs="*", action=CommaList, metavar="BLOCK")
        elif kind.startswith("tuple[float"):
            options.update(nargs=2, type=float, metavar=("LOW", "HIGH"))
        elif kind == "int":
            options["type"] = int
        elif kind.startswith("float"):
            options["type"] = _optional_float if "None" in kind else float
        group.add_argument(*flags, **options)


def case_overrides(args) -> dict:
    """The case fields given on the command line."""
    return {key[len(CASE_DEST):]: value for key, value in vars(args).items()
            if key.startswith(CASE_DEST)}


def _optional_float(text):
    return None if str(text).lower() in ("none", "off") else float(text)


def add_commands(sub) -> None:
    train = sub.add_parser(
        "train", help="train a case (the paper's recipe), resumable; validates at the end",
        description="Train one of the paper's cases, or a case with the IPU kit's flags overridden, "
                    "on any data source. Re-running the same command resumes from the newest "
                    "intact checkpoint; SIGTERM or Ctrl-C stops at the end of the current log "
                    "with a checkpoint.", epilog=DATA_SOURCES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("name", nargs="?", metavar="CASE|NAME",
                       help="a case (`effnet cases`), or a model name such as B0-G1-BN, trained "
                            "with the recipe of its own case, else of a case of its size (the "
                            "recipe used is printed; --config picks another)")
    train.add_argument("--config", metavar="CASE", help="the case whose recipe to run (the same as "
                                                        "a positional CASE)")
    train.add_argument("--config-path", help="a configs.yml of your own")
    train.add_argument("--data", default="shapes", help="data source (default shapes)")
    train.add_argument("--checkpoint-dir", help="run folder (default runs/CASE, or runs/NAME_CASE "
                                                "for a model trained with a case's recipe)")
    train.add_argument("--l2-regularization", type=float, default=0.0,
                       help="an L2 penalty in the loss on conv/dense kernels (the recipe decays "
                            "weights through --weight-decay instead)")
    train.add_argument("--logs-per-epoch", default="1", help="host events per epoch: 2, 1/2, 0 ...")
    train.add_argument("--synthetic-data", choices=("host", "device", "cpu", "ipu"),
                       help="random images: made by tf.data (host|cpu) or in the step (device|ipu)")
    train.add_argument("--training", type=boolean, default=True,
                       help="false: no training, only validation of the run folder's weights")
    train.add_argument("--validation", type=boolean, default=True,
                       help="validate the final weights and the averages at the end")
    train.add_argument("--width-coefficient", type=float, help="scale the model's width (small runs)")
    train.add_argument("--depth-coefficient", type=float, help="scale the model's depth (small runs)")
    train.add_argument("--max-updates-per-epoch", type=int, help="cap an epoch (quick runs)")
    train.add_argument("--skip-corrupt", action="store_true",
                       help="skip unreadable images and report how many, instead of stopping")
    train.add_argument("--seed", type=int, default=0,
                       help="seeds the weights, the data order, the crops and the mixing")
    train.add_argument("--validate-every-epoch", action="store_true",
                       help="top-1/top-5 on the validation split at every checkpoint (as the "
                            "reference did), logged as val_top1/val_top5")
    train.add_argument("--checkpoint-every-updates", type=int, metavar="N",
                       help="also checkpoint within an epoch every N weight updates (logs at "
                            "least as often); 0: at epoch ends only. Default: epochs of over "
                            "1000 updates get one about every 500 (1668 -> every 556), shorter "
                            "ones at epoch ends only")
    train.add_argument("--keep-checkpoints", type=int, default=2, metavar="K",
                       help="checkpoints within an epoch to keep, newest first (default 2)")
    train.add_argument("--deterministic", action="store_true",
                       help="TensorFlow's op determinism (slower): a run stopped and resumed "
                            "ends with the weights of an uninterrupted one")
    train.add_argument("--dry-run", action="store_true",
                       help="print the resolved recipe, each line against the reference, and stop")
    add_case_options(train)
    train.set_defaults(func=run_train)

    valid = sub.add_parser(
        "validate", help="top-1/top-5/loss of a checkpoint, over test resolutions",
        description="Validate a checkpoint (or a run folder's newest) at one or several test "
                    "resolutions; a sweep is the FixRes curve.")
    valid.add_argument("--checkpoint", required=True, help="checkpoint or run folder")
    valid.add_argument("--image-sizes", help="e.g. 128,160,224 (default: the training size)")
    valid.add_argument("--data", help="data source (default: the one it was trained on)")
    valid.add_argument("--output", help="CSV to write the table to")
    valid.set_defaults(func=run_validate)

    tune = sub.add_parser(
        "finetune", help="the paper's resolution fine-tuning step",
        description="Fine-tune a checkpoint's last layers at the test resolution with the "
                    "validation preprocessing and a cosine schedule (2 epochs by default).")
    tune.add_argument("--checkpoint", "--init-path", dest="init_path", required=True,
                      metavar="CHECKPOINT",
                      help="checkpoint (e.g. RUN/average) or run folder (--init-path: the IPU "
                           "kit's name)")
    tune.add_argument("--image-size", type=int, required=True, help="the test size to fine-tune at")
    tune.add_argument("--variable-filter", nargs="*", action=CommaList, default=["Top"],
                      help="train variables matching these names (default Top; e.g. Top block7 block6)")
    tune.add_argument("--train-with-valid-preprocessing", type=boolean, default=True,
                      help="train on centre crops as validation sees them (the paper's choice)")
    tune.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs (0: only --reestimate-bn-statistics)")
    tune.add_argument("--batch-size", type=int, default=64, help="micro-batch (default 64)")
    tune.add_argument("--gradient-accumulation-count", type=int, default=8,
                      help="micro-batches per update (default 8: a global batch of 512, as the "
                           "paper's fine-tuning)")
    tune.add_argument("--warmup-epochs", type=float, default=5,
                      help="linear warm-up of the cosine (default 5, the reference's: it outlasts a "
                           "2-epoch run, as it did there; 0 for a plain cosine)")
    tune.add_argument("--lr-schedule", choices=("cosine", "exponential", "constant"), default="cosine",
                      help="the learning-rate schedule")
    tune.add_argument("--base-learning-rate-exponent", type=float, default=-11,
                      help="peak rate 2^E per image of the global batch")
    tune.add_argument("--data", help="data source (default: the one it was trained on)")
    tune.add_argument("--checkpoint-dir", help="where to save (default RUN/finetune-SIZE)")
    tune.add_argument("--seed", type=int, default=0, help="seeds the data order and the mixing")
    tune.add_argument("--reestimate-bn-statistics", action="store_true",
                      help="BN models: first recompute the matching BatchNorm layers' moving "
                           "statistics at the new size (with --epochs 0, only that)")
    tune.add_argument("--bn-batches", type=int, default=20,
                      help="batches for --reestimate-bn-statistics (default 20)")
    tune.set_defaults(func=run_finetune)


def run_train(args):
    quiet_backend()
    from ..training.cases import load_case
    from ..training.train import train

    overrides = case_overrides(args)
    if overrides.get("pipeline_stages") == 1 and "pipeline_splits" not in overrides:
        overrides["pipeline_splits"] = ()  # one stage has nothing to split
    case = load_case(_case_to_run(args, overrides), args.config_path)
    case = case.replace(**overrides) if overrides else case
    if args.dry_run:
        from ..training.recipe_report import describe_recipe

        print(f"{case.name}: the recipe `effnet train` runs (on 1 device; add GPUs and replicas "
              f"fold as shown):")
        for line in describe_recipe(case):
            print(f"  {line}")
        return 0
    data = args.data
    if args.synthetic_data:
        data = "synthetic-host" if args.synthetic_data in ("host", "cpu") else "synthetic-device"
    model_overrides = {k: getattr(args, k) for k in ("width_coefficient", "depth_coefficient")
                       if getattr(args, k) is not None}
    run_dir = args.checkpoint_dir
    if run_dir is None and "model" in overrides:  # not the case's own run folder
        run_dir = f"runs/{overrides['model']}_{case.name}"
    result = train(case, data=data, run_dir=run_dir, logs_per_epoch=args.logs_per_epoch,
                   training=args.training, validation=args.validation,
                   l2_regularization=args.l2_regularization, seed=args.seed,
                   model_overrides=model_overrides, max_updates_per_epoch=args.max_updates_per_epoch,
                   skip_corrupt=args.skip_corrupt, validate_every_epoch=args.validate_every_epoch,
                   checkpoint_every_updates=args.checkpoint_every_updates,
                   keep_checkpoints=args.keep_checkpoints, deterministic=args.deterministic)
    if result.validation:
        v = result.validation
        print(f"validation at {v['image_size']}px: top-1 {v['top1']:.4f}, top-5 {v['top5']:.4f}, "
              f"loss {v['loss']:.4f}" + (f"; weight average top-1 {v['average']['top1']:.4f}"
                                         if "average" in v else ""))
    print(f"run folder: {result.run_dir} (epoch {result.epochs_done}, {result.updates} weight updates)")
    return 1 if result.stopped else 0


def _case_to_run(args, overrides: dict) -> str:
    """The case named (positionally or by --config), or the recipe case of a model named
    positionally (which then becomes the ``model`` override)."""
    from ..models.spec import EfficientNetSpec
    from ..training.cases import case_names, recipe_case

    name = args.name
    if name and name not in case_names(args.config_path):
        EfficientNetSpec.from_name(name)  # neither a case nor a model: its error says so
        if "model" in overrides and overrides["model"] != name:
            raise ValueError(f"two models: {name} and --model {overrides['model']}; give one.")
        overrides["model"], name = name, None
    if name and args.config and name != args.config:
        raise ValueError(f"two cases: {name} and --config {args.config}; give one.")
    case = name or args.config
    if case is None:
        if "model" not in overrides:
            raise ValueError("name a case or a model: effnet train CASE|NAME (effnet cases "
                             "lists the cases).")
        case = recipe_case(overrides["model"], args.config_path)
        print(f"{overrides['model']}: the recipe of {case}")
    return case


def run_validate(args):
    quiet_backend()
    from ..common.files import write_text
    from ..training.evaluation import validate

    sizes = int_list(args.image_sizes, "--image-sizes") if args.image_sizes else None
    rows = validate(args.checkpoint, data=args.data, image_sizes=sizes)
    if args.output:
        write_text(args.output, frame(rows).to_csv(index=False))
        print(f"wrote {args.output}")


def run_finetune(args):
    quiet_backend()
    from ..training.finetune import finetune

    finetune(args.init_path, args.image_size, data=args.data, run_dir=args.checkpoint_dir,
             variable_filter=args.variable_filter,
             train_with_valid_preprocessing=args.train_with_valid_preprocessing, epochs=args.epochs,
             batch_size=args.batch_size, gradient_accumulation_count=args.gradient_accumulation_count,
             warmup_epochs=args.warmup_epochs, lr_schedule=args.lr_schedule,
             base_learning_rate_exponent=args.base_learning_rate_exponent, seed=args.seed,
             reestimate_bn_statistics=args.reestimate_bn_statistics, bn_batches=args.bn_batches)
