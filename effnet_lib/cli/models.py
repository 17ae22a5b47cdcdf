"""``effnet cases | model | profile | memory``: the cases, a model's blocks, its counts, its memory."""

from __future__ import annotations

import json
import sys

from .common import EPILOG, CommaList, add_precision, add_xla, frame, int_list, print_table, quiet_backend


def add_commands(sub) -> None:
    cases = sub.add_parser("cases", help="list the paper's 30 training cases",
                           description="List the paper's training cases with their batch layout.")
    cases.add_argument("--config-path", help="a configs.yml of your own (default: the paper's)")
    cases.add_argument("--format", choices=("table", "csv"), default="table", help="table (aligned, to read) or csv (to paste)")
    cases.set_defaults(func=run_cases)

    model = sub.add_parser(
        "model", help="per-block summary of a model or case",
        description="Build a model and print, per block: stride, in/out channels, expansion, "
                    "groups of the spatial conv, residual, output size and trainable parameters.",
        epilog=EPILOG)
    model.add_argument("name", metavar="NAME|CASE", help="model name (B0-G16-LN_PN) or case name")
    model.add_argument("--image-size", type=int, help="input size (default: the model's or case's)")
    model.add_argument("--num-classes", type=int, help="classifier size (default 1000)")
    model.add_argument("--format", choices=("table", "csv"), default="table", help="table (aligned, to read) or csv (to paste)")
    model.set_defaults(func=run_model)

    prof = sub.add_parser(
        "profile", help="multiply-adds, parameters and activation memory, exactly",
        description="Count multiply-adds (the paper's 'FLOPs'), parameters and activation memory "
                    "from the architecture, per layer, block or stage. With --stages, the balance "
                    "of a case's pipeline stages (or of --splits you choose).", epilog=EPILOG)
    prof.add_argument("name", metavar="NAME|CASE", help="model name (B0-G16-LN_PN) or case name")
    prof.add_argument("--image-size", type=int, help="input size (default: the model's or case's)")
    prof.add_argument("--batch-size", type=int, help="images per pass (default 1, a case's micro-batch)")
    add_precision(prof, None, "bits per stored activation (default 32.32, a case's own)")
    prof.add_argument("--by", choices=("layer", "block", "stage"), default="stage",
                      help="one row per layer, block or stage")
    prof.add_argument("--format", choices=("table", "csv", "json"), default="table",
                      help="table (to read), csv or json (to process)")
    prof.add_argument("--stages", action="store_true", help="print the pipeline-stage balance")
    prof.add_argument("--splits", nargs="+", action=CommaList, metavar="BLOCK",
                      help="pipeline splits for --stages (default: the case's), e.g. block3b")
    prof.set_defaults(func=run_profile)

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
    add_xla(memory, "off")
    memory.add_argument("--format", choices=("table", "csv", "json"), default="table",
                        help="table (to read), csv or json (to process)")
    memory.set_defaults(func=run_memory)


def run_cases(args):
    from ..training.cases import load_cases

    table = frame([dict(case=c.name, model=c.model, image_size=c.image_size,
                        micro_batch=c.micro_batch_size, replicas=c.replicas,
                        stages=c.pipeline_stages, grad_accum=c.gradient_accumulation_count,
                        global_batch=c.global_batch_size, precision=c.precision,
                        splits=",".join(c.pipeline_splits))
                   for c in load_cases(args.config_path)])
    print_table(table, args.format)


def run_model(args):
    quiet_backend()
    from ..models.builder import build_model
    from ..models.summary import block_summary, count_weights, skip_statistics
    from ..training.cases import resolve_spec

    overrides = {} if args.num_classes is None else {"num_classes": args.num_classes}
    spec = resolve_spec(args.name, **overrides)
    if args.image_size is not None:
        spec = spec.replace(resolution=args.image_size)
    model = build_model(spec)
    table = block_summary(model, spec)
    print_table(table, args.format)
    if args.format == "table":
        skips = skip_statistics(spec)
        print(f"\n{spec.name} at {spec.resolution}px: {count_weights(model.trainable_weights):,} "
              f"trainable and {count_weights(model.non_trainable_weights):,} non-trainable "
              f"parameters; {skips['blocks']} blocks, {skips['with_skip']} with a residual "
              f"(skip ratio {skips['skip_ratio']:.2f}).")


def run_profile(args):
    from ..profiling import profile, stage_balance, training_memory
    from ..training.cases import case_names, load_case, resolve_spec

    case = load_case(args.name) if args.name in case_names() else None
    batch = args.batch_size or (case.micro_batch_size if case else 1)
    precision = args.precision or (case.precision if case else "32")
    prof = profile(resolve_spec(args.name), image_size=args.image_size, batch_size=batch,
                   precision=precision)
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
    print_table(table, args.format)
    if args.format == "table":
        memory = training_memory(prof)
        print(f"\n{prof.spec.name} at {prof.image_size}px, batch {batch}, {prof.precision}-bit activations:"
              f" {prof.macs / batch / 1e9:.3f} G multiply-adds per image, {prof.params:,} conv/dense"
              f" + {prof.norm_params:,} norm parameters, {prof.activation_bytes / 2**20:.1f} MiB of"
              f" activations; training-step memory estimate {memory['total'] / 2**20:.0f} MiB"
              f" (an estimate: see effnet_lib.profiling.memory.training_memory).")


def run_memory(args):
    from ..bench.timing import XLA
    from ..profiling import validate_estimate

    sizes = int_list(args.batch_sizes, "--batch-sizes")
    if len(sizes) != 2:
        raise ValueError(f"--batch-sizes {args.batch_sizes!r}: give exactly two, e.g. 8,32.")
    report = validate_estimate(args.name, args.image_size, sizes, steps=args.steps,
                               jit_compile=XLA[args.xla],
                               progress=lambda m: print(m, file=sys.stderr, flush=True))
    if args.format == "json":
        print(json.dumps(report, indent=1))
        return
    print_table(frame(report["rows"]).round(3), args.format)
    if args.format == "table":
        per = report["per_image"]
        print(f"\nPer extra image: measured {per['measured_mib']:.1f} MiB, estimated activations "
              f"{per['estimate_mib']:.1f} MiB (ratio {per['ratio']:.2f}). Measured = peak RSS of "
              f"the training process minus its RSS before the model was built (XLA "
              f"{args.xla}).")
