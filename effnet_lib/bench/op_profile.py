"""Where a training step's time goes: TensorFlow's profiler, summed by op type.

:func:`op_times` traces a few steps of a compiled Keras model with
``tf.profiler.experimental`` and adds up the duration of every TensorFlow op the
executor ran, by op type and by pass (``backward`` for the ops under the gradient
tape's name scope). With two threads running ops side by side, the op times add up to
more than the wall time of a step; the shares are of the op time.

    python -m effnet_lib.bench.op_profile B0-G1-BN --image-size 224 --batch-size 16
"""

from __future__ import annotations

import argparse
import collections
import json
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
    ("swish (oneDNN's fused kernel)", ("Swish",)),
    ("matrix product", ("MatMul", "_FusedMatMul", "BatchMatMul")),
    ("optimizer and variables", ("Assign", "ReadVariableOp", "ResourceApply", "VarHandleOp")),
    ("reductions", ("Sum", "Mean", "Max", "Min", "Prod")),
)


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="a model name, e.g. B0-G1-BN")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="profiled steps (after 2 warm-up)")
    parser.add_argument("--top", type=int, default=20, help="rows to print")
    parser.add_argument("--json", type=Path, help="also write the table and the wall time here")
    args = parser.parse_args(argv)
    from .timing import environment

    table, wall_ms = profile_training(args.name, args.image_size, args.batch_size, args.steps)
    print(f"{args.name} at {args.image_size} px, batch {args.batch_size}: {wall_ms:.0f} ms a "
          f"step (median of {args.steps}), {table.ms_per_step.sum():.0f} ms of op time")
    print(table.head(args.top).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print()
    print(by_category(table).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.json:
        args.json.write_text(json.dumps(dict(name=args.name, image_size=args.image_size,
                                             batch_size=args.batch_size, steps=args.steps,
                                             wall_ms=wall_ms, environment=environment("tensorflow"),
                                             rows=table.to_dict("records"),
                                             by_category=by_category(table).to_dict("records")),
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
