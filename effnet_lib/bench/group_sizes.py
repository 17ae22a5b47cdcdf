"""How fast is a k x k convolution as its group size grows? A per-layer microbenchmark.

One layer, one input shape (``channels`` in and out, ``image_size`` square,
``batch_size`` images), and the group size swept from 1 (depthwise) through 2,
4 ... 64 channels per group to dense (one group). Multiply-adds grow in
proportion to the group size; time, on real hardware, does not: small groups do
too little arithmetic per byte moved to keep the arithmetic units busy. That is
the paper's argument for G16, measured on your own machine.

Each implementation is timed in a fresh process per backend and compile mode:

* ``native``: ``DepthwiseConv2D`` for group size 1, ``Conv2D(groups=g)`` otherwise;
* ``split``: one dense conv per group (:class:`effnet_lib.models.grouped_conv.Conv2D`),
  for grouped sizes only (a depthwise layer split per channel is not a contender).

``train`` times forward + backward (gradients of input and kernel), ``infer``
the forward pass; both count multiply-adds as in the profiler (backward = 2x).
"""

from __future__ import annotations

import statistics
import time

import pandas as pd

from ..common.fresh_process import run_in_fresh_process
from .timing import XLA, environment, time_steps

GROUP_SIZES = (1, 2, 4, 8, 16, 32, 64, "dense")
IMPLS = ("native", "split")
SLOW_STEP_S = 2.0


def sweep(channels: int = 192, image_size: int = 28, batch_size: int = 8, kernel: int = 3,
          group_sizes=GROUP_SIZES, impls=IMPLS, mode: str = "train", backends=("tensorflow",),
          xla=("off",), warmup: int = 2, repeats: int = 5, steps: int = 2,
          progress=print, timeout: float = 1800) -> pd.DataFrame:
    """Time one conv layer over group sizes; one row per (backend, xla, impl, group size)."""
    sizes = [_check_group_size(g, channels) for g in group_sizes]
    if mode not in ("train", "infer"):
        raise ValueError(f"mode={mode!r}: accepted train or infer.")
    bad = [i for i in impls if i not in IMPLS]
    if bad:
        raise ValueError(f"impls={bad}: accepted {', '.join(IMPLS)}.")
    bad = [x for x in xla if x not in XLA]
    if bad:
        raise ValueError(f"xla={bad}: accepted {', '.join(XLA)}.")
    say = progress or (lambda *_: None)
    rows = []
    for backend in backends:
        for compile_mode in (xla if backend == "tensorflow" else ("auto",)):
            say(f"timing a {kernel}x{kernel} conv, {channels} channels, {image_size}px, batch "
                f"{batch_size} on {backend} (XLA {compile_mode}) over group sizes {sizes} ...")
            request = dict(channels=channels, image_size=image_size, batch_size=batch_size,
                           kernel=kernel, group_sizes=sizes, impls=list(impls), mode=mode,
                           xla=compile_mode, warmup=warmup, repeats=repeats, steps=steps)
            answer = run_in_fresh_process("effnet_lib.bench.group_sizes:sweep_job", request,
                                          timeout=timeout, backend=backend)
            rows += [dict(backend=backend, device=answer["device"], **row) for row in answer["rows"]]
    table = pd.DataFrame(rows)
    table["macs_per_s_G"] = table["macs"] / table["seconds"] / 1e9
    return table


def _check_group_size(size, channels: int) -> int:
    if size == "dense":
        return channels
    if not (isinstance(size, int) and size >= 1 and channels % size == 0):
        raise ValueError(f"group size {size!r}: it must divide channels={channels} "
                         f"(or be 'dense').")
    return size


def arithmetic_intensity(channels: int, image_size: int, batch_size: int, kernel: int,
                         group_size: int, bytes_per_value: int = 4) -> float:
    """Multiply-adds per byte of the fewest bytes a forward pass must move.

    Input and output are read and written once, the kernel read once. A dense
    conv reuses each input value for ``kernel^2 * channels`` multiply-adds; a
    depthwise one only ``kernel^2`` times, so it is bound by memory traffic long
    before its arithmetic units are busy.
    """
    pixels = batch_size * image_size * image_size
    macs = pixels * kernel * kernel * group_size * channels
    values = 2 * pixels * channels + kernel * kernel * group_size * channels
    return macs / (values * bytes_per_value)


def winners(table: pd.DataFrame, group_size: int = 16) -> list[dict]:
    """Per backend and device, the faster implementation at ``group_size`` (G16 by default)."""
    picked = []
    at = table[table.group_size == group_size]
    for (backend, device), part in at.groupby(["backend", "device"]):
        # The compile mode Keras uses by default is the one a model will run under.
        default = part[part.xla.isin(["auto", "False"])]
        part = default if len(default) else part
        best = part.sort_values("seconds").iloc[0]
        others = part[part.impl != best.impl]
        picked.append(dict(backend=backend, device=device, winner=best.impl,
                           group_size=int(group_size), xla=str(best.xla),
                           speedup=float(others.seconds.min() / best.seconds) if len(others) else None))
    return picked


def plot(table: pd.DataFrame):
    """Time and achieved multiply-adds/s against group size, one line per implementation;
    depthwise (group size 1) drawn as its own marker, group sizes as tick labels."""
    import matplotlib.pyplot as plt

    fig, (ax_time, ax_rate) = plt.subplots(1, 2, figsize=(11, 4))
    markers = iter("osD^v<>")
    for (backend, xla, impl), part in table.groupby(["backend", "xla", "impl"]):
        part = part.sort_values("group_size")
        label = f"{backend}, {impl}" + (f", XLA {xla}" if backend == "tensorflow" else "")
        marker = next(markers)
        for ax, values in ((ax_time, 1000 * part.seconds), (ax_rate, part.macs_per_s_G)):
            line, = ax.plot(part.group_size, values, marker=marker, ls="-", label=label)
            depthwise = part.group_size == 1
            if depthwise.any():
                ax.plot(part.group_size[depthwise], values[depthwise], marker="*", ms=14, ls="none",
                        color=line.get_color(), label=f"{label}: depthwise")
    first = table.iloc[0]
    sizes = sorted(table.group_size.unique())
    for ax, title in ((ax_time, "time per step"), (ax_rate, "arithmetic done per second")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sizes, [str(g) if g != first["channels"] else f"{g}\n(dense)" for g in sizes])
        ax.minorticks_off()
        ax.set_xlabel("channels per group")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    ax_time.set_ylabel(f"ms per {first['mode']} step")
    ax_rate.set_ylabel("achieved multiply-adds/s (G)")
    ax_rate.legend(fontsize=7)
    fig.suptitle(f"{first['kernel']}x{first['kernel']} conv, {first['channels']} channels, "
                 f"{first['image_size']}px, batch {first['batch_size']}: measured")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- in the fresh process

def _layer(impl: str, group_size: int, channels: int, kernel: int):
    import keras

    from ..models.grouped_conv import Conv2D as SplitConv2D

    groups = channels // group_size
    if group_size == 1 and impl == "native":
        return keras.layers.DepthwiseConv2D(kernel, padding="same", use_bias=False)
    if impl == "split" and 1 < groups < channels:
        return SplitConv2D(channels, kernel, padding="same", groups=groups, use_bias=False)
    if impl == "native":
        return keras.layers.Conv2D(channels, kernel, padding="same", groups=groups, use_bias=False)
    return None  # split of a dense or depthwise layer: not a contender


def sweep_job(request: dict) -> dict:
    """In the fresh process: every group size and implementation of one backend and XLA mode."""
    import keras
    import numpy as np

    from ..models.conv_impl import device_kind

    c, size, batch, k = (request[key] for key in ("channels", "image_size", "batch_size", "kernel"))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, size, size, c)).astype("float32")
    rows = []
    for group_size in request["group_sizes"]:
        for impl in request["impls"]:
            layer = _layer(impl, group_size, c, k)
            if layer is None:
                continue
            inputs = keras.Input((size, size, c))
            model = keras.Model(inputs, layer(inputs))
            xla = XLA[request["xla"]]
            if request["mode"] == "train":
                # Gradients of the input and of the kernel: the whole backward pass.
                model.compile(optimizer=keras.optimizers.SGD(1e-6), loss="mse", jit_compile=xla)
                y = np.zeros((batch, size, size, c), "float32")
                step = lambda: model.train_on_batch(x, y)  # noqa: E731
            else:
                model.compile(jit_compile=xla)
                step = lambda: model.predict_on_batch(x)  # noqa: E731
            start = time.perf_counter()
            step()  # traces and compiles
            first = time.perf_counter() - start
            # A layer that takes seconds per step (TensorFlow's and XLA's grouped convs on
            # CPU) is timed once: its spread does not change the picture, the wait would.
            slow = first > SLOW_STEP_S
            times = time_steps(step, 0 if slow else request["warmup"],
                               1 if slow else request["repeats"], 1 if slow else request["steps"])
            forward = size * size * k * k * group_size * c * batch
            rows.append(dict(impl=impl, group_size=group_size, groups=c // group_size,
                             channels=c, image_size=size, batch_size=batch, kernel=k,
                             mode=request["mode"], xla=str(getattr(model, "jit_compile", xla)),
                             seconds=statistics.median(times), seconds_min=min(times),
                             seconds_max=max(times),
                             macs=forward * (3 if request["mode"] == "train" else 1)))
            keras.backend.clear_session()
    return dict(device=device_kind(), rows=rows, environment=environment(keras.backend.backend()))
