"""The ``effnet`` command line."""

from __future__ import annotations

import argparse
import os
import sys

EPILOG = """Names: a model is B{0-7}-G{group size}-{BN|GN|LN|GN_PN|LN_PN} (e.g. B0-G16-LN_PN);
a case is one of the paper's 30 training configurations (`effnet cases` lists them)."""


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as error:
        print(f"effnet {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if not type(error).__module__.startswith("tensorflow"):
            raise
        # Errors from inside tf.data come wrapped in TensorFlow's op context.
        from .data.pipeline import readable_input_error

        print(f"effnet {args.command}: error: {readable_input_error(error)}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="effnet", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="EfficientNet with group convolutions, batch-independent normalisation and "
                    "reduced-resolution training (Masters et al., 2021) on TensorFlow 2 + Keras 3.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    cases = sub.add_parser("cases", help="list the paper's 30 training cases",
                           description="List the paper's training cases with their batch layout.")
    cases.add_argument("--config-path", help="a configs.yml of your own (default: the paper's)")
    cases.add_argument("--format", choices=("table", "csv"), default="table")
    cases.set_defaults(func=_cases)

    model = sub.add_parser(
        "model", help="per-block summary of a model or case",
        description="Build a model and print, per block: stride, in/out channels, expansion, "
                    "groups of the spatial conv, residual, output size and trainable parameters.",
        epilog=EPILOG)
    model.add_argument("name", metavar="NAME|CASE", help="model name (B0-G16-LN_PN) or case name")
    model.add_argument("--image-size", type=int, help="input size (default: the model's or case's)")
    model.add_argument("--num-classes", type=int, help="classifier size (default 1000)")
    model.add_argument("--format", choices=("table", "csv"), default="table")
    model.set_defaults(func=_model)

    prof = sub.add_parser(
        "profile", help="multiply-adds, parameters and activation memory, exactly",
        description="Count multiply-adds (the paper's 'FLOPs'), parameters and activation memory "
                    "from the architecture, per layer, block or stage. With --stages, the balance "
                    "of a case's pipeline stages (or of --splits you choose).", epilog=EPILOG)
    prof.add_argument("name", metavar="NAME|CASE", help="model name (B0-G16-LN_PN) or case name")
    prof.add_argument("--image-size", type=int, help="input size (default: the model's or case's)")
    prof.add_argument("--batch-size", type=int, help="images per pass (default 1, a case's micro-batch)")
    prof.add_argument("--precision", help="16 or 32 bits per activation (default 32, a case's)")
    prof.add_argument("--by", choices=("layer", "block", "stage"), default="stage")
    prof.add_argument("--format", choices=("table", "csv", "json"), default="table")
    prof.add_argument("--stages", action="store_true", help="print the pipeline-stage balance")
    prof.add_argument("--splits", nargs="+", metavar="BLOCK",
                      help="pipeline splits for --stages (default: the case's), e.g. block3b")
    prof.set_defaults(func=_profile)

    memory = sub.add_parser(
        "memory", help="measure a training step's peak memory against the estimate",
        description="Run real training steps (RMSprop with momentum, random images) in fresh "
                    "processes at two batch sizes, measure the peak resident memory and compare "
                    "it with the profiler's training-memory estimate: in total, and per extra "
                    "image (which checks the activation model). CPU only: peak RSS.",
        epilog=EPILOG)
    memory.add_argument("name", metavar="NAME", nargs="?", default="B0-G1-GN",
                        help="model name (default B0-G1-GN)")
    memory.add_argument("--image-size", type=int, default=128, help="input size (default 128)")
    memory.add_argument("--batch-sizes", default="8,32", help="two batch sizes (default 8,32)")
    memory.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up (default 3)")
    memory.add_argument("--xla", action="store_true", help="compile the step with XLA")
    memory.add_argument("--format", choices=("table", "csv", "json"), default="table")
    memory.set_defaults(func=_memory)

    _add_data_commands(sub)
    _add_training_commands(sub)
    _add_benchmark_commands(sub)

    tables = sub.add_parser(
        "tables", help="the paper's multiply-add/parameter tables and front-page figure",
        description="Write to --output-dir: multiply-adds and parameters of B0-B5 x {G1-GN, "
                    "G16-GN, G16-LN_PN} x {native, half}, computed here beside the paper's "
                    "reported values (CSV, Markdown); residual statistics; and reported accuracy "
                    "against computed multiply-adds (PNG).")
    tables.add_argument("--output-dir", default="figures", help="where results go (default figures/)")
    tables.set_defaults(func=_tables)

    reproduce = sub.add_parser(
        "reproduce", help="run the notebooks headless: every table and figure into figures/",
        description="The main job: execute notebooks/NN_*.ipynb with papermill (executed copies "
                    "in build/notebooks/, the sources untouched); they write their figures, tables "
                    "and key numbers (NN_name.json) to --output-dir. A failing notebook does not "
                    "stop the others; the exit status is 1 if any failed.")
    reproduce.add_argument("--profile", choices=("smoke", "quick", "full"), default="quick",
                           help="smoke: seconds per notebook (tests); quick (default): minutes; "
                                "full: hours")
    reproduce.add_argument("--notebooks", metavar="NN,NN", help="only these numbers, e.g. 02,04")
    reproduce.add_argument("--jobs", type=int, default=1, help="notebooks run in parallel (default 1)")
    reproduce.add_argument("--output-dir", default="figures", help="where results go (default figures/)")
    reproduce.add_argument("--build-dir", default="build/notebooks",
                           help="where the executed notebooks go (default build/notebooks/)")
    reproduce.add_argument("--data", default="shapes",
                           help="data source for the notebooks that train: shapes (default), "
                                "shapes:PATH, folder:PATH, imagenet:PATH, tfds:NAME")
    reproduce.add_argument("--seed", type=int, default=0)
    reproduce.set_defaults(func=_reproduce)
    return parser


def _cases(args):
    from .cases import load_cases

    table = _frame([dict(case=c.name, model=c.model, image_size=c.image_size,
                         micro_batch=c.micro_batch_size, replicas=c.replicas,
                         stages=c.pipeline_stages, grad_accum=c.gradient_accumulation_count,
                         global_batch=c.global_batch_size, precision=c.precision,
                         splits=",".join(c.pipeline_splits))
                    for c in load_cases(args.config_path)])
    _print(table, args.format)


def _model(args):
    _quiet_backend()
    from .cases import resolve_spec
    from .efficientnet import build_model
    from .model_summary import block_summary, count_weights, skip_statistics

    overrides = {} if args.num_classes is None else {"num_classes": args.num_classes}
    spec = resolve_spec(args.name, **overrides)
    if args.image_size is not None:
        spec = spec.replace(resolution=args.image_size)
    model = build_model(spec)
    table = block_summary(model, spec)
    _print(table, args.format)
    if args.format == "table":
        skips = skip_statistics(spec)
        print(f"\n{spec.name} at {spec.resolution}px: {count_weights(model.trainable_weights):,} "
              f"trainable and {count_weights(model.non_trainable_weights):,} non-trainable "
              f"parameters; {skips['blocks']} blocks, {skips['with_skip']} with a residual "
              f"(skip ratio {skips['skip_ratio']:.2f}).")


def _profile(args):
    from .cases import case_names, load_case
    from .flops import profile, stage_balance, training_memory

    case = load_case(args.name) if args.name in case_names() else None
    batch = args.batch_size or (case.micro_batch_size if case else 1)
    precision = args.precision or (case.precision if case else "32")
    prof = profile(args.name, image_size=args.image_size, batch_size=batch, precision=precision)
    if args.stages:
        splits = args.splits or (case.pipeline_splits if case else None)
        if not splits:
            raise ValueError("--stages needs --splits BLOCK [BLOCK ...] for a model name "
                             "(a case brings its own).")
        table = stage_balance(prof, splits)
    else:
        table = prof.layers if args.by == "layer" else prof.by(args.by)
    if args.format == "json":
        print(table.to_json(orient="records", indent=1))
        return
    _print(table, args.format)
    if args.format == "table":
        memory = training_memory(prof)
        print(f"\n{prof.spec.name} at {prof.image_size}px, batch {batch}, {prof.precision}-bit activations:"
              f" {prof.macs / batch / 1e9:.3f} G multiply-adds per image, {prof.params:,} conv/dense"
              f" + {prof.norm_params:,} norm parameters, {prof.activation_bytes / 2**20:.1f} MiB of"
              f" activations; training-step memory estimate {memory['total'] / 2**20:.0f} MiB"
              f" (an estimate: see effnet_lib.flops.training_memory).")


def _memory(args):
    import json

    from .memory import validate_estimate

    sizes = _int_list(args.batch_sizes, "--batch-sizes")
    if len(sizes) != 2:
        raise ValueError(f"--batch-sizes {args.batch_sizes!r}: give exactly two, e.g. 8,32.")
    report = validate_estimate(args.name, args.image_size, sizes, steps=args.steps,
                               jit_compile=args.xla,
                               progress=lambda m: print(m, file=sys.stderr, flush=True))
    if args.format == "json":
        print(json.dumps(report, indent=1))
        return
    _print(_frame(report["rows"]).round(3), args.format)
    if args.format == "table":
        per = report["per_image"]
        print(f"\nPer extra image: measured {per['measured_mib']:.1f} MiB, estimated activations "
              f"{per['estimate_mib']:.1f} MiB (ratio {per['ratio']:.2f}). Measured = peak RSS of "
              f"the training process minus its RSS before the model was built (XLA "
              f"{'on' if args.xla else 'off'}).")


def _int_list(text, flag):
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{flag} {text!r}: expected integers separated by commas, e.g. 8,32.") from None


DATA_SOURCES = """Sources: shapes (the embedded default, generated on first use), shapes:PATH,
folder:PATH (PATH/{train,validation}/<class>/*.jpg|png), imagenet:PATH (TFRecord shards
train-00000-of-01024 ...), tfds:NAME, synthetic-host, synthetic-device."""


def _add_data_commands(sub):
    data = sub.add_parser(
        "data", help="make the embedded data set, convert, preview and time input pipelines",
        description="Input data: the embedded shapes set, image folders, ImageNet TFRecords, "
                    "TFDS and synthetic images.", epilog=DATA_SOURCES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    make = commands.add_parser("make-shapes", help="generate the shapes data set into a folder",
                               description="Render the shapes classification set as JPEG class "
                                           "folders (deterministic for a seed).")
    make.add_argument("--out", required=True, help="folder to create")
    make.add_argument("--image-size", type=int, default=128)
    make.add_argument("--train", type=int, default=10000, help="training images (default 10000)")
    make.add_argument("--val", type=int, default=2000, help="validation images (default 2000)")
    make.add_argument("--classes", type=int, default=10)
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--tfrecords", action="store_true",
                      help="also write ImageNet-layout TFRecord shards into OUT/tfrecords")
    make.set_defaults(func=_data_make_shapes)

    show = commands.add_parser("show", help="save a grid of augmented samples as PNG",
                               description="Save a grid of samples as the model sees them, with "
                                           "their labels.", epilog=DATA_SOURCES)
    show.add_argument("source", nargs="?", default="shapes")
    show.add_argument("--split", choices=("train", "validation"), default="train")
    show.add_argument("--image-size", type=int, default=128)
    show.add_argument("--count", type=int, default=16)
    show.add_argument("--mixup-alpha", type=float, default=0.0)
    show.add_argument("--cutmix-lambda", type=float, default=1.0)
    show.add_argument("--seed", type=int, default=0)
    show.add_argument("--out", default="figures/data_samples.png", help="PNG to write")
    show.set_defaults(func=_data_show)

    build = commands.add_parser("build-tfrecords", help="convert an image folder into ImageNet-layout shards",
                                description="Write FOLDER/{train,validation}/<class>/* as "
                                            "train-XXXXX-of-NNNNN / validation-... TFRecord shards.")
    build.add_argument("folder")
    build.add_argument("out")
    build.add_argument("--train-shards", type=int, default=8)
    build.add_argument("--validation-shards", type=int, default=2)
    build.set_defaults(func=_data_build_tfrecords)

    bench = commands.add_parser("bench", help="images/s of the input pipeline against bare decoding",
                                description="Time the full training input pipeline and a bare "
                                            "decode loop over the same files.", epilog=DATA_SOURCES)
    bench.add_argument("source", nargs="?", default="shapes")
    bench.add_argument("--image-size", type=int, default=224)
    bench.add_argument("--batch-size", type=int, default=64)
    bench.add_argument("--images", type=int, default=3000, help="images timed per loop and round")
    bench.add_argument("--rounds", type=int, default=3,
                       help="the two loops take turns this many times; medians are reported")
    bench.add_argument("--cache", action="store_true", help="cache encoded files in memory")
    bench.set_defaults(func=_data_bench)


def _data_make_shapes(args):
    from .data.shapes import make_shapes

    root = make_shapes(args.out, image_size=args.image_size, train=args.train,
                       validation=args.val, classes=args.classes, seed=args.seed)
    print(f"shapes data set in {root}")
    if args.tfrecords:
        from .data.tfrecords import build_tfrecords

        for path in build_tfrecords(root, root / "tfrecords"):
            print(f"wrote {path}")


def _data_show(args):
    _quiet_backend()
    from .data import make_dataset
    from .data.preview import save_grid

    data = make_dataset(args.source, args.split, args.image_size, min(args.count, 64), seed=args.seed,
                        mixup_alpha=args.mixup_alpha, cutmix_lambda=args.cutmix_lambda)
    print(f"wrote {save_grid(data, args.out, count=args.count)}")


def _data_build_tfrecords(args):
    from .data.tfrecords import build_tfrecords

    for path in build_tfrecords(args.folder, args.out, args.train_shards, args.validation_shards):
        print(f"wrote {path}")


def _data_bench(args):
    _quiet_backend()
    from .data.bench import bench, explain

    result = bench(args.source, args.image_size, args.batch_size, args.images, rounds=args.rounds,
                   cache=args.cache)
    size = result["source_size"]
    sources = f", sources {size[0]}x{size[1]} px (median)" if size else ""
    print(f"{args.source} at {args.image_size}px, batch {args.batch_size}{sources}; "
          f"medians of {args.rounds} rounds:")
    print(f"  training pipeline  {result['pipeline_images_per_s']:9.0f} images/s")
    if "ratio" in result:
        print(f"  bare decode        {result['bare_decode_images_per_s']:9.0f} images/s")
        print(f"  ratio              {result['ratio']:9.2f}  (pipeline / bare decode; rounds: "
              + ", ".join(f"{r['ratio']:.2f}" for r in result["rounds_measured"]) + ")")
    print(f"  {explain(result)}")


def _bool(text):
    lowered = str(text).lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r}: expected true or false")


# The IPU kit's flag names, mapped to CaseConfig fields.
CASE_FLAGS = {
    "batch_size": "micro_batch_size", "gradient_accumulation_count": "gradient_accumulation_count",
    "replicas": "replicas", "epochs": "epochs", "image_size": "image_size", "precision": "precision",
    "base_learning_rate_exponent": "base_learning_rate_exponent", "lr_schedule": "lr_schedule",
    "label_smoothing": "label_smoothing", "weight_decay": "weight_decay",
    "warmup_epochs": "warmup_epochs", "mixup_alpha": "mixup_alpha", "cutmix_lambda": "cutmix_lambda",
}


def _add_training_commands(sub):
    train = sub.add_parser(
        "train", help="train a case (the paper's recipe), resumable; validates at the end",
        description="Train one of the paper's cases, or a case with the IPU kit's flags overridden, "
                    "on any data source. Re-running the same command resumes after the last "
                    "complete epoch.", epilog=DATA_SOURCES, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--config", required=True, metavar="CASE", help="a case name (effnet cases)")
    train.add_argument("--config-path", help="a configs.yml of your own")
    train.add_argument("--data", default="shapes", help="data source (default shapes)")
    train.add_argument("--checkpoint-dir", help="run folder (default runs/CASE)")
    train.add_argument("--batch-size", type=int, help="micro-batch size")
    train.add_argument("--gradient-accumulation-count", type=int)
    train.add_argument("--replicas", type=int)
    train.add_argument("--epochs", type=int)
    train.add_argument("--image-size", type=int)
    train.add_argument("--precision", choices=("32.32", "16.32", "16.16", "bf16"))
    train.add_argument("--base-learning-rate-exponent", type=float)
    train.add_argument("--lr-schedule", choices=("exponential", "cosine", "constant"))
    train.add_argument("--warmup-epochs", type=float)
    train.add_argument("--label-smoothing", type=float)
    train.add_argument("--weight-decay", type=float)
    train.add_argument("--l2-regularization", type=float, default=0.0)
    train.add_argument("--mixup-alpha", type=float)
    train.add_argument("--cutmix-lambda", type=float)
    train.add_argument("--logs-per-epoch", default="1", help="host events per epoch: 2, 1/2, 0 ...")
    train.add_argument("--synthetic-data", choices=("host", "device", "cpu", "ipu"),
                       help="random images: made by tf.data (host|cpu) or in the step (device|ipu)")
    train.add_argument("--training", type=_bool, default=True)
    train.add_argument("--validation", type=_bool, default=True)
    train.add_argument("--width-coefficient", type=float, help="scale the model's width (small runs)")
    train.add_argument("--depth-coefficient", type=float, help="scale the model's depth (small runs)")
    train.add_argument("--max-updates-per-epoch", type=int, help="cap an epoch (quick runs)")
    train.add_argument("--skip-corrupt", action="store_true",
                       help="skip unreadable images and report how many, instead of stopping")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=_train)

    valid = sub.add_parser(
        "validate", help="top-1/top-5/loss of a checkpoint, over test resolutions",
        description="Validate a checkpoint (or a run folder's newest) at one or several test "
                    "resolutions; a sweep is the FixRes curve.")
    valid.add_argument("--checkpoint", required=True, help="checkpoint or run folder")
    valid.add_argument("--image-sizes", help="e.g. 128,160,224 (default: the training size)")
    valid.add_argument("--data", help="data source (default: the one it was trained on)")
    valid.add_argument("--output", help="CSV to write the table to")
    valid.set_defaults(func=_validate)

    tune = sub.add_parser(
        "finetune", help="the paper's resolution fine-tuning step",
        description="Fine-tune a checkpoint's last layers at the test resolution with the "
                    "validation preprocessing and a cosine schedule (2 epochs by default).")
    tune.add_argument("--init-path", required=True, help="checkpoint (e.g. RUN/average) or run folder")
    tune.add_argument("--image-size", type=int, required=True)
    tune.add_argument("--variable-filter", nargs="*", default=["Top"],
                      help="train variables matching these names (default Top; e.g. Top block7 block6)")
    tune.add_argument("--train-with-valid-preprocessing", type=_bool, default=True)
    tune.add_argument("--epochs", type=int, default=2)
    tune.add_argument("--batch-size", type=int, default=64)
    tune.add_argument("--lr-schedule", choices=("cosine", "exponential", "constant"), default="cosine")
    tune.add_argument("--base-learning-rate-exponent", type=float, default=-11)
    tune.add_argument("--data", help="data source (default: the one it was trained on)")
    tune.add_argument("--checkpoint-dir", help="where to save (default RUN/finetune-SIZE)")
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--reestimate-bn-statistics", action="store_true",
                      help="BN models: first recompute the matching BatchNorm layers' moving "
                           "statistics at the new size (with --epochs 0, only that)")
    tune.add_argument("--bn-batches", type=int, default=20,
                      help="batches for --reestimate-bn-statistics (default 20)")
    tune.set_defaults(func=_finetune)


def _train(args):
    _quiet_backend()
    from .cases import load_case
    from .train import train

    case = load_case(args.config, args.config_path)
    overrides = {field: getattr(args, flag) for flag, field in CASE_FLAGS.items()
                 if getattr(args, flag) is not None}
    case = case.replace(**overrides) if overrides else case
    data = args.data
    if args.synthetic_data:
        data = "synthetic-host" if args.synthetic_data in ("host", "cpu") else "synthetic-device"
    model_overrides = {k: getattr(args, k) for k in ("width_coefficient", "depth_coefficient")
                       if getattr(args, k) is not None}
    result = train(case, data=data, run_dir=args.checkpoint_dir, logs_per_epoch=args.logs_per_epoch,
                   training=args.training, validation=args.validation,
                   l2_regularization=args.l2_regularization, seed=args.seed,
                   model_overrides=model_overrides, max_updates_per_epoch=args.max_updates_per_epoch,
                   data_options={"skip_corrupt": True} if args.skip_corrupt else None)
    if result.validation:
        v = result.validation
        print(f"validation at {v['image_size']}px: top-1 {v['top1']:.4f}, top-5 {v['top5']:.4f}, "
              f"loss {v['loss']:.4f}" + (f"; weight average top-1 {v['average']['top1']:.4f}"
                                         if "average" in v else ""))
    print(f"run folder: {result.run_dir} (epoch {result.epochs_done}, {result.updates} weight updates)")
    return 1 if result.stopped else 0


def _validate(args):
    _quiet_backend()
    from .train import validate

    sizes = _int_list(args.image_sizes, "--image-sizes") if args.image_sizes else None
    rows = validate(args.checkpoint, data=args.data, image_sizes=sizes)
    table = _frame(rows)
    if args.output:
        from .reproduce import write_atomic

        write_atomic(args.output, table.to_csv(index=False))
        print(f"wrote {args.output}")


def _finetune(args):
    _quiet_backend()
    from .finetune import finetune

    finetune(args.init_path, args.image_size, data=args.data, run_dir=args.checkpoint_dir,
             variable_filter=args.variable_filter,
             train_with_valid_preprocessing=args.train_with_valid_preprocessing, epochs=args.epochs,
             batch_size=args.batch_size, lr_schedule=args.lr_schedule,
             base_learning_rate_exponent=args.base_learning_rate_exponent, seed=args.seed,
             reestimate_bn_statistics=args.reestimate_bn_statistics, bn_batches=args.bn_batches)


def _add_benchmark_commands(sub):
    bench = sub.add_parser(
        "benchmark", help="measured images/s, latency and memory beside the reference networks",
        description="Time training and inference steps of a model or case on images drawn inside "
                    "the compiled step (the input pipeline is not measured), beside "
                    "keras.applications' EfficientNet of the same size and, when torch and timm "
                    "are installed, timm's. Each measurement runs in a fresh process: warm-up, "
                    "then repeated timed runs (median and spread). Results and the environment "
                    "(hardware, versions, date) are saved as CSV and JSON.", epilog=EPILOG)
    bench.add_argument("name", metavar="NAME|CASE", help="model name (B0-G1-BN) or case name")
    bench.add_argument("--image-size", type=int, help="input size (default: the model's or case's)")
    bench.add_argument("--batch-size", type=int, default=32)
    bench.add_argument("--precision", choices=("32", "16", "bf16"), default="32",
                       help="32: float32; 16: mixed float16; bf16: mixed bfloat16")
    bench.add_argument("--mode", choices=("train", "infer", "both"), default="both")
    bench.add_argument("--xla", choices=("auto", "on", "off"), default="auto",
                       help="auto: Keras's choice (XLA on accelerators, not on CPUs with TensorFlow)")
    bench.add_argument("--reference", default="keras,timm",
                       help="comma-separated references: keras, timm, or none (default keras,timm)")
    bench.add_argument("--conv-impl", choices=("auto", "native", "split"), default="auto",
                       help="grouped convolution implementation (default: fastest measured)")
    bench.add_argument("--num-classes", type=int, default=1000)
    bench.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    bench.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    bench.add_argument("--steps", type=int, default=3, help="steps per timed run (default 3)")
    bench.add_argument("--output-dir", default="figures/benchmarks",
                       help="where the CSV/JSON go (default figures/benchmarks)")
    bench.set_defaults(func=_benchmark)

    groups = sub.add_parser(
        "benchmark-groups", help="one conv layer's speed against its group size",
        description="Time a k x k convolution at one input shape with 1 (depthwise), 2, 4, ... "
                    "64 channels per group and dense, for each implementation (native grouped "
                    "conv, split per group), backend and compile mode; plot time and achieved "
                    "multiply-adds/s against group size. --save-choice records the faster "
                    "implementation at group size 16 for conv_impl='auto' on this machine.")
    groups.add_argument("--channels", type=int, default=192)
    groups.add_argument("--image-size", type=int, default=28)
    groups.add_argument("--batch-size", type=int, default=8)
    groups.add_argument("--kernel", type=int, default=3)
    groups.add_argument("--group-sizes", default="1,2,4,8,16,32,64,dense")
    groups.add_argument("--mode", choices=("train", "infer"), default="train")
    groups.add_argument("--backends", default="tensorflow",
                        help="comma-separated Keras backends, e.g. tensorflow,jax")
    groups.add_argument("--xla", default="off,on", help="TensorFlow compile modes to time (default off,on)")
    groups.add_argument("--repeats", type=int, default=5)
    groups.add_argument("--output-dir", default="figures/benchmarks")
    groups.add_argument("--save-choice", action="store_true",
                        help="save the winner at group size 16 as this machine's conv_impl='auto'")
    groups.set_defaults(func=_benchmark_groups)


def _benchmark(args):
    _quiet_backend()
    from .benchmark import benchmark, format_table

    references = [r for r in args.reference.split(",") if r and r != "none"]
    report = benchmark(args.name, image_size=args.image_size, batch_size=args.batch_size,
                       precision=args.precision, mode=args.mode, xla=args.xla,
                       references=references, warmup=args.warmup, repeats=args.repeats,
                       steps=args.steps, num_classes=args.num_classes, conv_impl=args.conv_impl,
                       progress=lambda text: print(text, file=sys.stderr))
    print(format_table(report))
    for path in report.save(args.output_dir):
        print(f"wrote {path}")


def _benchmark_groups(args):
    _quiet_backend()
    from . import conv_bench, conv_impl
    from .notebook_results import save_figure, save_table

    sizes = [g if g == "dense" else _int_list(g, "--group-sizes")[0]
             for g in args.group_sizes.split(",")]
    table = conv_bench.sweep(channels=args.channels, image_size=args.image_size,
                             batch_size=args.batch_size, kernel=args.kernel, group_sizes=sizes,
                             mode=args.mode, backends=args.backends.split(","),
                             xla=args.xla.split(","), repeats=args.repeats,
                             progress=lambda text: print(text, file=sys.stderr))
    shown = table[["backend", "xla", "impl", "group_size", "groups", "seconds", "macs_per_s_G"]]
    print(shown.assign(ms=1000 * shown.seconds).drop(columns="seconds").to_string(index=False))
    name = f"group_sizes-{args.channels}ch-{args.image_size}px-b{args.batch_size}-{args.mode}"
    for path in save_table(table, args.output_dir, name) + [
            save_figure(conv_bench.plot(table), args.output_dir, name)]:
        print(f"wrote {path}")
    winners = conv_bench.winners(table)
    for w in winners:
        print(f"at 16 channels per group on {w['backend']}/{w['device']}: {w['winner']} is "
              f"fastest" + (f" ({w['speedup']:.2f}x)" if w["speedup"] else ""))
    if args.save_choice:
        import datetime

        stamp = datetime.date.today().isoformat()
        path = conv_impl.save_choice([dict(w, date=stamp) for w in winners])
        print(f"saved to {path}: conv_impl='auto' now uses these on this machine")


def _tables(args):
    from .paper_tables import write_tables

    for path in write_tables(args.output_dir):
        print(f"wrote {path}")


def _reproduce(args):
    _quiet_backend()
    from .notebook_runner import run_notebooks

    if args.profile == "full":
        print("profile full: the notebooks train for real; this may take hours on a CPU.", flush=True)
    result = run_notebooks(profile=args.profile, notebooks=args.notebooks, jobs=args.jobs,
                           output_dir=args.output_dir, build_dir=args.build_dir, data=args.data,
                           seed=args.seed)
    return 0 if result.ok else 1


def _frame(rows):
    import pandas as pd

    return pd.DataFrame(rows)


def _print(table, fmt):
    if fmt == "csv":
        print(table.to_csv(index=False), end="")
    else:
        print(table.to_string(index=False))


def _quiet_backend():
    # TensorFlow's start-up banners bury the answer of a short command.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


if __name__ == "__main__":
    sys.exit(main())
