"""``effnet benchmark | benchmark-groups``: measured speed beside the peers, and over group sizes."""

from __future__ import annotations

import sys

from .common import EPILOG, add_precision, add_xla, int_list, quiet_backend, xla_list


def add_commands(sub) -> None:
    bench = sub.add_parser(
        "benchmark", help="measured images/s, latency and memory beside the reference networks",
        description="Time training and inference steps of a model or case on images drawn inside "
                    "the compiled step (the input pipeline is not measured), beside "
                    "keras.applications' EfficientNet of the same size and, when torch and timm "
                    "are installed (pip install -e .[timm]), timm's: its efficientnet_bN, or for "
                    "a G16/GN/LN variant timm's EfficientNet built with the same stages, groups "
                    "and norm. Each measurement runs in a fresh process: warm-up, then repeated "
                    "timed runs (median and spread); each reference is also timed alternately "
                    "with this kit's model (the paired ratio: Keras's in one process, timm's in "
                    "a process of its own taking turns). Results and the "
                    "environment (hardware, versions, date) are saved as CSV and JSON.",
        epilog=EPILOG)
    bench.add_argument("name", metavar="NAME|CASE", nargs="?",
                       help="model name (B0-G1-BN) or case name (not with --exported)")
    bench.add_argument("--exported", metavar="DIR",
                       help="time an `effnet export` folder (inference; its size and classes)")
    bench.add_argument("--image-size", type=int, help="input size (default: the model's or case's)")
    bench.add_argument("--batch-size", type=int, default=32, help="images per step")
    add_precision(bench, "32.32", "compute.storage precision of the timed steps")
    bench.add_argument("--mode", choices=("train", "infer", "both"), default="both",
                       help="time training steps, inference steps or both")
    add_xla(bench, "auto")
    bench.add_argument("--reference", default="keras,timm",
                       help="comma-separated references: keras, timm, or none (default keras,timm)")
    bench.add_argument("--conv-impl", choices=("auto", "native", "split"), default="auto",
                       help="grouped convolution implementation (default: fastest measured)")
    bench.add_argument("--num-classes", type=int, default=1000, help="classifier size")
    bench.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    bench.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    bench.add_argument("--steps", type=int, default=3, help="steps per timed run (default 3)")
    bench.add_argument("--output-dir", default="figures/benchmarks",
                       help="where the CSV/JSON go (default figures/benchmarks)")
    bench.set_defaults(func=run_benchmark)

    groups = sub.add_parser(
        "benchmark-groups", help="one conv layer's speed against its group size",
        description="Time a k x k convolution at one input shape with 1 (depthwise), 2, 4, ... "
                    "64 channels per group and dense, for each implementation (native grouped "
                    "conv, split per group), backend and compile mode; plot time and achieved "
                    "multiply-adds/s against group size. --save-choice records the faster "
                    "implementation at group size 16 for conv_impl='auto' on this machine.")
    groups.add_argument("--channels", type=int, default=192, help="input and output channels of the conv")
    groups.add_argument("--image-size", type=int, default=28, help="input height and width")
    groups.add_argument("--batch-size", type=int, default=8, help="images per step")
    groups.add_argument("--kernel", type=int, default=3, help="kernel size k of the k x k conv")
    groups.add_argument("--group-sizes", default="1,2,4,8,16,32,64,dense",
                        help="channels per group, comma-separated; dense: one group")
    groups.add_argument("--mode", choices=("train", "infer"), default="train",
                        help="forward + backward (train) or forward only")
    groups.add_argument("--backends", default="tensorflow",
                        help="comma-separated Keras backends, e.g. tensorflow,jax")
    groups.add_argument("--xla", default="off,on", type=xla_list,
                        help="XLA settings to time, comma-separated: each of auto, on, off")
    groups.add_argument("--repeats", type=int, default=5, help="timed runs per point")
    groups.add_argument("--output-dir", default="figures/benchmarks", help="where the CSV and the plot go")
    groups.add_argument("--save-choice", action="store_true",
                        help="save the winner at group size 16 as this machine's conv_impl='auto'")
    groups.set_defaults(func=run_benchmark_groups)


def run_benchmark(args):
    quiet_backend()
    from ..bench.throughput import benchmark, format_table

    if (args.name is None) == (args.exported is None):
        print("effnet benchmark: error: give a NAME|CASE or --exported DIR (one of them)",
              file=sys.stderr)
        return 2
    references = [r for r in args.reference.split(",") if r and r != "none"]
    report = benchmark(args.name, image_size=args.image_size, batch_size=args.batch_size,
                       precision=args.precision, mode=args.mode, xla=args.xla,
                       references=references, warmup=args.warmup, repeats=args.repeats,
                       steps=args.steps, num_classes=args.num_classes, conv_impl=args.conv_impl,
                       exported=args.exported,
                       progress=lambda text: print(text, file=sys.stderr))
    print(format_table(report))
    for path in report.save(args.output_dir):
        print(f"wrote {path}")


def run_benchmark_groups(args):
    quiet_backend()
    from ..bench import group_sizes
    from ..common.files import save_figure, save_table
    from ..models import conv_impl

    sizes = [g if g == "dense" else int_list(g, "--group-sizes")[0]
             for g in args.group_sizes.split(",")]
    table = group_sizes.sweep(channels=args.channels, image_size=args.image_size,
                              batch_size=args.batch_size, kernel=args.kernel, group_sizes=sizes,
                              mode=args.mode, backends=args.backends.split(","),
                              xla=args.xla, repeats=args.repeats,
                              progress=lambda text: print(text, file=sys.stderr))
    shown = table[["backend", "xla", "impl", "group_size", "groups", "seconds", "macs_per_s_G"]]
    print(shown.assign(ms=1000 * shown.seconds).drop(columns="seconds").to_string(index=False))
    name = f"group_sizes-{args.channels}ch-{args.image_size}px-b{args.batch_size}-{args.mode}"
    for path in save_table(table, args.output_dir, name) + [
            save_figure(group_sizes.plot(table), args.output_dir, name)]:
        print(f"wrote {path}")
    winners = group_sizes.winners(table)
    for w in winners:
        print(f"at 16 channels per group on {w['backend']}/{w['device']}: {w['winner']} is "
              f"fastest" + (f" ({w['speedup']:.2f}x)" if w["speedup"] else ""))
    if args.save_choice:
        import datetime

        stamp = datetime.date.today().isoformat()
        path = conv_impl.save_choice([dict(w, date=stamp) for w in winners])
        print(f"saved to {path}: conv_impl='auto' now uses these on this machine")
