"""Where a training step's time goes: TensorFlow's profiler, summed by op type.

:func:`op_times` traces a few steps of a compiled Keras model with
``tf.profiler.experimental`` and adds up the duration of every TensorFlow op the
executor ran, by op type and by pass (``backward`` for the ops under the gradient
tape's name scope). With two threads running ops side by side, the op times add up to
more than the wall time of a step; the shares are of the op time.

    python -m effnet_lib.bench.op_profile B0-G1-BN --image-size 224 --batch-size 16
    python -m effnet_lib.bench.op_profile B0-G1-BN --implementation timm --json FILE.json
    python -m effnet_lib.bench.op_profile --write-doc docs/measurements.md --records FILE.json ...
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import re
import tempfile
import time
from pathlib import Path

# Executor bookkeeping on the op threads ("ExecutorState::Process", "ThreadpoolListener::...",
# "ParallelFor"), not ops; an op's event is named "node:OpType".
def _is_op(name: str) -> bool:
    return ":" in name and "::" not in name


# What an op type does in EfficientNet, for the summary by category. Element-wise work
# (the activations and their gradients, Proxy Norm, squeeze-excite scaling, BatchNorm's
# arithmetic where it is not fused) is most of "element-wise".
CATEGORIES = (
    ("depthwise convolution", ("DepthwiseConv2dNative", "FusedDepthwiseConv2dNative")),
    ("convolution", ("Conv2D", "_FusedConv2D", "FusedConv2D")),
    ("batch norm (fused kernel)", ("FusedBatchNorm",)),
    ("swish (fused kernel)", ("Swish",)),
    ("matrix product", ("MatMul", "_FusedMatMul", "BatchMatMul")),
    ("optimizer and variables", ("Assign", "ReadVariableOp", "ResourceApply", "VarHandleOp")),
    ("reductions", ("Sum", "Mean", "Max", "Min", "Prod")),
)


# PyTorch's operators (timm's profile): its convolution calls do not say which are depthwise.
TORCH_CATEGORIES = (
    ("convolution (dense and depthwise)", ("convolution", "conv2d", "mkldnn_convolution")),
    ("batch norm (fused kernel)", ("batch_norm",)),
    ("swish (fused kernel)", ("silu",)),
    ("matrix product", ("aten::mm", "aten::addmm", "aten::linear")),
    ("optimizer and variables", ("Optimizer.", "aten::addcmul_", "aten::addcdiv_", "aten::sqrt")),
)


def torch_category(op: str) -> str:
    for name, parts in TORCH_CATEGORIES:
        if any(part in op for part in parts):
            return name
    return "element-wise and other"


def category(op: str) -> str:
    """The category of an op type (first match in :data:`CATEGORIES`, else element-wise);
    oneDNN's ops (``_MklNativeConv2D``, ``_MklFusedBatchNormV3``) count as what they run."""
    kernel = op.removeprefix("_MklNative").removeprefix("_Mkl")
    for name, prefixes in CATEGORIES:
        if kernel.startswith(prefixes):
            return name
    return "element-wise and other"


def op_times(model, images, labels, steps: int = 3, warmup: int = 2):
    """``(table, wall_ms)``: a DataFrame of op type, pass, milliseconds a step and share of the
    op time, largest first; and the median wall time of a profiled step."""
    import pandas as pd
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    for _ in range(warmup):
        model.train_on_batch(images, labels)
    walls = []
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            for _ in range(steps):
                start = time.perf_counter()
                model.train_on_batch(images, labels)
                walls.append(time.perf_counter() - start)
        finally:
            tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        (trace,) = Path(logdir).rglob("*.xplane.pb")
        space.ParseFromString(trace.read_bytes())
    totals = collections.Counter()
    for plane in space.planes:
        names = plane.event_metadata
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = names[event.metadata_id].name
                if not _is_op(name):
                    continue
                node, op = name.rsplit(":", 1)
                kind = "backward" if "gradient_tape/" in node else "forward"
                totals[(op, kind)] += event.duration_ps
    if not totals:
        raise RuntimeError("the profiler recorded no TensorFlow ops: is this the TensorFlow "
                           "backend, running graphs (not eagerly)?")
    table = pd.DataFrame([dict(op=op, pass_=kind, ms_per_step=ps / 1e9 / steps)
                          for (op, kind), ps in totals.items()]).rename(columns={"pass_": "pass"})
    table["category"] = table.op.map(category)
    table["share"] = table.ms_per_step / table.ms_per_step.sum()
    table = table.sort_values("ms_per_step", ascending=False).reset_index(drop=True)
    return table, 1000 * sorted(walls)[len(walls) // 2]


def by_category(table):
    """Milliseconds a step and share of the op time by category and pass, largest first."""
    grouped = table.groupby(["category", "pass"], as_index=False)[["ms_per_step", "share"]].sum()
    return grouped.sort_values("ms_per_step", ascending=False).reset_index(drop=True)


DOC_BEGIN = ("<!-- op profile by category: written from figures/benchmarks/op-profile-*.json by "
             "`python -m effnet_lib.bench.op_profile --write-doc FILE.md --records RECORD.json ...` -->")
DOC_END = "<!-- op profile by category: end -->"


def comparison_table(records: list[dict], names: list[str]) -> str:
    """Markdown: milliseconds of op time a step by category (both passes), one column per
    recorded profile, categories recomputed from the op names; then each file's wall time."""
    import pandas as pd

    from ..common.files import markdown

    columns, notes = {}, []
    for record, name in zip(records, names):
        rows = pd.DataFrame(record["rows"])
        torch = record.get("implementation") == "timm"
        rows["category"] = rows.op.map(torch_category if torch else category)
        totals = rows.groupby("category").ms_per_step.sum()
        totals["convolutions, all"] = totals[[c for c in totals.index if "convolution" in c]].sum()
        totals["op time, all"] = rows.ms_per_step.sum()
        implementation = record.get("implementation", "effnet-kit")
        # the file's words after its date: "...-20261207-onednn-off.json" -> "onednn-off"
        words = re.sub(r"^.*-\d{8}-?", "", name.removesuffix(".json"))
        label = f"{implementation} ({words})" if words and words != implementation else implementation
        columns[label] = totals
        env = record["environment"]
        notes.append(f"- {label}: {record['name']} at {record['image_size']} px, batch "
                     f"{record['batch_size']}, {record['wall_ms']:.0f} ms a step (median of "
                     f"{record['steps']}), {env['date'][:10]}, {env['cpu']} ({env['cpu_count']} "
                     f"cores); `figures/benchmarks/{name}`")
    table = pd.DataFrame(columns).fillna(0.0)
    order = [c for c in table.index if c not in ("convolutions, all", "op time, all")]
    table = table.loc[sorted(order, key=lambda c: -table.loc[c].max())
                      + ["convolutions, all", "op time, all"]]
    table = table.map(lambda v: f"{v:.0f}").reset_index(names="ms a step (both passes)")
    return markdown(table).rstrip("\n") + "\n\n" + "\n".join(notes)


def write_doc(path, record_paths) -> None:
    from ..common.files import replace_block

    paths = [Path(p) for p in record_paths]
    records = [json.loads(p.read_text()) for p in paths]
    replace_block(path, DOC_BEGIN, DOC_END,
                  "\n" + comparison_table(records, [p.name for p in paths]) + "\n")


def profile_training(name: str, image_size: int = 224, batch_size: int = 16, steps: int = 3,
                     num_classes: int = 1000, **overrides):
    """Build ``name``, compile it as the benchmark's training step does, and profile it."""
    import keras
    import numpy as np

    from ..common.optimizer_slots import build_optimizer_slots
    from ..models.builder import build_model

    model = build_model(name, image_size=image_size, num_classes=num_classes, **overrides)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-4, momentum=0.9),
                  loss="sparse_categorical_crossentropy", jit_compile=False)
    build_optimizer_slots(model)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch_size, image_size, image_size, 3)).astype("float32")
    labels = rng.integers(0, num_classes, batch_size)
    return op_times(model, images, labels, steps=steps)


def profile_timm_training(name: str, image_size: int = 224, batch_size: int = 16,
                          steps: int = 3, num_classes: int = 1000, warmup: int = 2):
    """timm's matched network (as ``effnet benchmark`` times it: channels-last, RMSprop),
    profiled with PyTorch's profiler: self time by operator, pass and category. Run it in a
    process that has not loaded TensorFlow (torchvision's import crashes after it)."""
    import pandas as pd
    from torch.profiler import ProfilerActivity, profile

    from ..training.cases import resolve_spec
    from .steps import timm_step

    spec = resolve_spec(name).replace(num_classes=num_classes)
    _, step, _ = timm_step(dict(spec=dataclasses.asdict(spec), num_classes=num_classes, mode="train",
                                image_size=image_size, batch_size=batch_size, precision="32"))
    for _ in range(warmup):
        step()
    walls = []
    with profile(activities=[ProfilerActivity.CPU]) as trace:
        for _ in range(steps):
            start = time.perf_counter()
            step()
            walls.append(time.perf_counter() - start)
    rows = [dict(op=event.key, ms_per_step=event.self_cpu_time_total / 1000 / steps,
                 category=torch_category(event.key),
                 **{"pass": "backward" if "backward" in event.key.lower() else "forward"})
            for event in trace.key_averages() if event.self_cpu_time_total > 0]
    table = pd.DataFrame(rows)
    table["share"] = table.ms_per_step / table.ms_per_step.sum()
    table = table.sort_values("ms_per_step", ascending=False).reset_index(drop=True)
    return table, 1000 * sorted(walls)[len(walls) // 2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", nargs="?", help="a model name, e.g. B0-G1-BN")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="profiled steps (after 2 warm-up)")
    parser.add_argument("--top", type=int, default=20, help="rows to print")
    parser.add_argument("--json", type=Path, help="also write the table and the wall time here")
    parser.add_argument("--implementation", choices=("effnet-kit", "timm"), default="effnet-kit",
                        help="this kit's model (TensorFlow's profiler) or timm's matched one "
                             "(PyTorch's profiler; needs the timm extra)")
    parser.add_argument("--write-doc", metavar="FILE.md", help="instead of profiling, write the "
                        "by-category table of the profiles --records names into FILE.md")
    parser.add_argument("--records", nargs="+", metavar="RECORD.json", default=[],
                        help="recorded profiles (--json files) for --write-doc")
    args = parser.parse_args(argv)
    if args.write_doc:
        if not args.records:
            parser.error("--write-doc needs --records RECORD.json ...")
        write_doc(args.write_doc, args.records)
        print(f"wrote the op-profile table into {args.write_doc}")
        return 0
    if not args.name:
        parser.error("give a model name to profile (or --write-doc FILE.md RECORD.json ...)")
    from .timing import environment

    profiler = profile_timm_training if args.implementation == "timm" else profile_training
    table, wall_ms = profiler(args.name, args.image_size, args.batch_size, args.steps)
    print(f"{args.name} at {args.image_size} px, batch {args.batch_size}: {wall_ms:.0f} ms a "
          f"step (median of {args.steps}), {table.ms_per_step.sum():.0f} ms of op time")
    print(table.head(args.top).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print()
    print(by_category(table).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.json:
        args.json.write_text(json.dumps(dict(name=args.name, implementation=args.implementation,
                                             image_size=args.image_size,
                                             batch_size=args.batch_size, steps=args.steps,
                                             wall_ms=wall_ms, environment=environment(
                                                 "torch" if args.implementation == "timm"
                                                 else "tensorflow"),
                                             rows=table.to_dict("records"),
                                             by_category=by_category(table).to_dict("records")),
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
