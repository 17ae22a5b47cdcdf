"""Measured throughput: images per second, step latency and peak memory.

The paper's argument is about measured speed, not multiply-adds, so this module
times real training and inference steps of a model beside reference
implementations of the same network, in the same run, on the same data:

* ``effnet-kit``: :func:`effnet_lib.build_model` of the model or case.
* ``keras``: ``keras.applications.EfficientNetBn`` of the same size, same backend.
* ``timm``: ``timm``'s ``efficientnet_bn`` on PyTorch, when torch and timm are
  installed (skipped with a note otherwise).

How it measures, so that the numbers mean one thing:

* Every measurement runs in a fresh process (:mod:`effnet_lib.fresh_process`):
  nothing compiled or allocated by another model is there, and the peak memory
  is this model's.
* Images are drawn at random *inside the compiled step* (a ``SyntheticImages``
  layer in front of the model): only the labels, a few bytes, travel, so the
  input pipeline is not measured.
* Warm-up steps first (tracing, compilation, allocation), then ``repeats`` timed
  runs of ``steps`` steps each; the table gives the median and the spread
  (slowest and fastest run). Each step returns its loss or outputs to the host,
  so asynchronous devices are synchronised.
* Training is the recipe's RMSprop step (momentum 0.9, epsilon 1e-3). A training
  step is counted as 3 forward passes of multiply-adds (forward, and a backward
  pass of about twice the forward's work), the usual convention.
* Model FLOP utilisation: achieved multiply-adds per second over the rate of a
  large matrix product measured in the same run, on the same device, at the
  same precision (also in a fresh process).
* Peak memory: on a GPU the device allocator's peak; on a CPU the process's
  peak resident memory minus its resident memory before the model was built.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .fresh_process import measure_in_fresh_process, peak_rss_bytes, rss_bytes

MODES = ("train", "infer")
XLA = {"auto": "auto", "on": True, "off": False}
PRECISIONS = {"32": "float32", "16": "mixed_float16", "bf16": "mixed_bfloat16"}
REFERENCES = ("keras", "timm")
TRAIN_FORWARD_PASSES = 3
MIB = 2**20


@dataclass
class BenchmarkReport:
    """The measurements of one ``benchmark`` run: a table and its environment."""

    table: pd.DataFrame
    environment: dict
    notes: list = field(default_factory=list)

    def save(self, output_dir) -> list[Path]:
        """Write the table (CSV) and table + environment + notes (JSON) into ``output_dir``."""
        from .notebook_results import atomic_write

        out = Path(output_dir)
        stamp = self.environment["date"].replace(":", "").replace("-", "")[:15]
        first = self.table.iloc[0]
        base = out / f"benchmark-{first['model']}-{first['image_size']}px-b{first['batch_size']}-{stamp}"
        payload = dict(environment=self.environment, notes=self.notes,
                       results=json.loads(self.table.to_json(orient="records")))
        return [atomic_write(base.with_suffix(".csv"), lambda t: self.table.to_csv(t, index=False)),
                atomic_write(base.with_suffix(".json"),
                              lambda t: t.write_text(json.dumps(payload, indent=2) + "\n"))]


def benchmark(name, image_size: int | None = None, batch_size: int = 32, precision: str = "32",
              mode: str = "both", xla: str = "auto", references=("keras", "timm"),
              warmup: int = 2, repeats: int = 5, steps: int = 3, num_classes: int = 1000,
              conv_impl: str = "auto", backend: str | None = None, progress=print,
              timeout: float = 1800) -> BenchmarkReport:
    """Measure a model (and its references) and return a table with ratios.

    Args:
        name: a model (``"B0-G16-LN_PN"``) or case name.
        image_size: input size (default: the model's or case's).
        batch_size: images per step.
        precision: ``"32"``, ``"16"`` (mixed float16) or ``"bf16"`` (mixed bfloat16).
        mode: ``"train"``, ``"infer"`` or ``"both"``.
        xla: ``"auto"`` (Keras's choice: XLA on accelerators, not on CPUs with
            TensorFlow), ``"on"`` or ``"off"``.
        references: any of ``"keras"``, ``"timm"``; the reference must be a
            standard network size (B0-B7); timm is skipped when not installed.
        warmup, repeats, steps: warm-up steps, timed runs, steps per timed run.
        backend: the Keras backend to measure (default: ``$KERAS_BACKEND`` or tensorflow).
    """
    from .cases import resolve_spec

    request = _check_request(locals())
    spec = resolve_spec(name)
    size = request["image_size"] or spec.resolution
    request["image_size"] = size
    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    say = progress or (lambda *_: None)
    notes = []
    implementations = ["effnet-kit"]
    for reference in references:
        available, note = _reference_available(reference, spec)
        if note:
            notes.append(note)
            say(note)
        if available:
            implementations.append(reference)
    # Mode by mode, so that the runs compared in a ratio are next to each other in time
    # (a shared machine's speed drifts over minutes).
    jobs = [(implementation, m) for m in request["modes"] for implementation in implementations]
    matmul = _measure_matmul(request, backend, say, timeout)
    rows = [_measure(name, spec, request, implementation, mode_, matmul, backend, say, timeout)
            for implementation, mode_ in jobs]
    table = _with_ratios(pd.DataFrame(rows))
    if "keras" in implementations:
        table = _with_paired_ratio(table, name, spec, request, backend, say, timeout)
    environment = dict(_environment(backend), matmul_macs_per_s=matmul["macs_per_s"],
                       matmul_size=matmul["n"], request=request)
    return BenchmarkReport(table, environment, notes)


def measure_variants(entries, batch_size: int = 32, mode: str = "train", precision: str = "32",
                     xla: str = "auto", warmup: int = 2, repeats: int = 5, steps: int = 3,
                     num_classes: int = 1000, conv_impl: str = "auto", backend: str | None = None,
                     isolate: bool = True, progress=print, timeout: float = 1800) -> BenchmarkReport:
    """Measure several models, each at its own resolution, in one run (one matmul rate).

    ``entries``: dicts with ``label`` (how a table names it, e.g. ``"G16-GN-Half"``),
    ``name`` (model or case), ``image_size`` and optionally ``overrides`` (spec fields
    such as ``width_coefficient``, for tiny test runs). No references are measured.
    ``isolate=False`` measures in this process, one model after another: quicker to
    start, but the models share the process's memory peak and compiled state, so use it
    for smoke runs only; the table's ``memory_measure`` then says so.
    """
    from .cases import resolve_spec

    if not entries:
        raise ValueError("entries is empty: give at least one dict(label=, name=, image_size=).")
    request = _check_request(dict(image_size=None, batch_size=batch_size, precision=precision,
                                  mode=mode, xla=xla, references=(), warmup=warmup,
                                  repeats=repeats, steps=steps, num_classes=num_classes,
                                  conv_impl=conv_impl))
    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    say = progress or (lambda *_: None)
    if not isolate and backend != os.environ.get("KERAS_BACKEND", "tensorflow"):
        raise ValueError(f"isolate=False measures in this process, whose backend is not {backend!r}.")
    matmul = _measure_matmul(request, backend, say, timeout, isolate)
    rows = []
    for entry in entries:
        overrides = dict(entry.get("overrides") or {})
        spec = resolve_spec(entry["name"], **overrides)
        at_size = dict(request, image_size=entry["image_size"], overrides=overrides)
        for mode_ in request["modes"]:
            row = _measure(entry["name"], spec, at_size, "effnet-kit", mode_, matmul, backend, say,
                           timeout, isolate)
            rows.append(dict(label=entry["label"], **row))
    environment = dict(_environment(backend), matmul_macs_per_s=matmul["macs_per_s"],
                       matmul_size=matmul["n"], request=request)
    return BenchmarkReport(pd.DataFrame(rows), environment, [])


def _measure_matmul(request, backend, say, timeout, isolate=True) -> dict:
    say(f"measuring the matrix-multiply rate ({backend}, {PRECISIONS[request['precision']]}) ...")
    job = dict(job="matmul", **request)
    if not isolate:
        return _child(job)
    return measure_in_fresh_process("effnet_lib.benchmark", job, timeout=timeout, backend=backend)


def _measure(name, spec, request, implementation, mode, matmul, backend, say, timeout,
             isolate=True) -> dict:
    say(f"measuring {implementation} {mode} ({spec.name} at {request['image_size']}px, "
        f"batch {request['batch_size']}) ...")
    job = dict(request, job="model", implementation=implementation, mode=mode, name=name,
               size_name=spec.name.split("-")[0])
    if isolate:
        result = measure_in_fresh_process("effnet_lib.benchmark", job, timeout=timeout,
                                          backend=None if implementation == "timm" else backend)
    else:
        import keras

        result = _child(job)
        result["memory_measure"] += " (shared process: not this model's alone)"
        result["peak_bytes"] = max(result["peak_bytes"], 0)
        keras.backend.clear_session()
    return _row(spec, request, implementation, mode, result, matmul)


def _check_request(args: dict) -> dict:
    def positive(name, value, low=1):
        if not (isinstance(value, int) and value >= low):
            raise ValueError(f"{name}={value!r}: it must be an integer >= {low}.")
        return value

    if args["precision"] not in PRECISIONS:
        raise ValueError(f"precision={args['precision']!r}: accepted {', '.join(PRECISIONS)}.")
    if args["mode"] not in MODES + ("both",):
        raise ValueError(f"mode={args['mode']!r}: accepted train, infer or both.")
    if args["xla"] not in XLA:
        raise ValueError(f"xla={args['xla']!r}: accepted {', '.join(XLA)}.")
    unknown = [r for r in args["references"] if r not in REFERENCES]
    if unknown:
        raise ValueError(f"references={unknown}: accepted {', '.join(REFERENCES)} (or none).")
    if args["image_size"] is not None:
        positive("image_size", args["image_size"], 8)
    for key in ("batch_size", "repeats", "steps", "num_classes"):
        positive(key, args[key])
    positive("warmup", args["warmup"], 0)
    return dict(image_size=args["image_size"], batch_size=args["batch_size"],
                precision=args["precision"], xla=args["xla"], warmup=args["warmup"],
                repeats=args["repeats"], steps=args["steps"], num_classes=args["num_classes"],
                conv_impl=args["conv_impl"],
                modes=list(MODES) if args["mode"] == "both" else [args["mode"]])


def _reference_available(reference: str, spec) -> tuple[bool, str | None]:
    standard = spec.name.split("-")[0]
    from .spec import PRESETS

    if standard not in PRESETS:
        return False, f"{reference}: no reference for {spec.name}"
    if reference == "timm":
        import importlib.util

        missing = [m for m in ("torch", "timm") if importlib.util.find_spec(m) is None]
        if missing:
            return False, (f"timm reference skipped: {' and '.join(missing)} not installed "
                           f"(pip install torch timm to compare with timm's efficientnet_"
                           f"{standard.lower()})")
    return True, None


def _row(spec, request, implementation, mode, result, matmul) -> dict:
    from .flops import profile

    size = request["image_size"]
    forward = profile(spec.replace(num_classes=request["num_classes"]), image_size=size).macs
    passes = TRAIN_FORWARD_PASSES if mode == "train" else 1
    times = result["seconds_per_step"]
    median = statistics.median(times)
    per_s = [request["batch_size"] / t for t in times]
    macs_per_s = forward * passes * request["batch_size"] / median
    name = spec.name if implementation == "effnet-kit" else result["model"]
    return dict(model=spec.name, implementation=implementation, network=name, mode=mode,
                image_size=size, batch_size=request["batch_size"], precision=request["precision"],
                xla=result["xla"], images_per_s=request["batch_size"] / median,
                images_per_s_min=min(per_s), images_per_s_max=max(per_s),
                step_ms=1000 * median, peak_memory_mib=result["peak_bytes"] / MIB,
                memory_measure=result["memory_measure"],
                forward_macs_per_image_G=forward / 1e9,
                achieved_macs_per_s_G=macs_per_s / 1e9,
                utilisation=macs_per_s / matmul["macs_per_s"],
                params=result["params"])


def _with_paired_ratio(table, name, spec, request, backend, say, timeout) -> pd.DataFrame:
    """``speed_vs_keras_paired``: the ratio from one process alternating the two models."""
    paired = {}
    for mode in request["modes"]:
        say(f"measuring effnet-kit and keras {mode} alternately in one process ...")
        job = dict(request, job="paired", mode=mode, name=name, size_name=spec.name.split("-")[0],
                   implementations=["effnet-kit", "keras"])
        times = measure_in_fresh_process("effnet_lib.benchmark", job, timeout=timeout,
                                         backend=backend)["seconds_per_step"]
        paired[mode] = statistics.median(times["keras"]) / statistics.median(times["effnet-kit"])
    table["speed_vs_keras_paired"] = [paired.get(row.mode) if row.implementation == "effnet-kit"
                                      else None for row in table.itertuples()]
    return table


def _with_ratios(table: pd.DataFrame) -> pd.DataFrame:
    # The ratio to each reference: >1 means effnet-kit is faster.
    for reference in table.implementation.unique():
        if reference == "effnet-kit":
            continue
        ref = table[table.implementation == reference].set_index("mode")["images_per_s"]
        table[f"speed_vs_{reference}"] = [
            row.images_per_s / ref[row.mode] if row.implementation == "effnet-kit" and row.mode in ref
            else None for row in table.itertuples()]
    return table


def _environment(backend: str) -> dict:
    import importlib.metadata as md

    def version(package):
        try:
            return md.version(package)
        except md.PackageNotFoundError:
            return None

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return dict(date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                backend=backend, cpu=cpu, cpu_count=os.cpu_count(), platform=platform.platform(),
                python=platform.python_version(),
                versions={p: version(p) for p in ("keras", "tensorflow", "tensorflow-cpu", "jax",
                                                  "jaxlib", "torch", "timm", "numpy")})


def format_table(report: BenchmarkReport) -> str:
    """The table a person reads: one line per implementation and mode."""
    t = report.table
    columns = ["implementation", "mode", "images_per_s", "images_per_s_min", "images_per_s_max",
               "step_ms", "peak_memory_mib", "achieved_macs_per_s_G", "utilisation"]
    columns += [c for c in t.columns if c.startswith("speed_vs_")]
    paired = ("\nspeed_vs_keras_paired: the ratio timed in one process, the two models' runs "
              "alternating (drift cancels; the fairer figure)") if "speed_vs_keras_paired" in t else ""
    shown = t[columns].copy()
    for column in columns[2:]:
        shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:,.3g}")
    env = report.environment
    head = (f"{t.model.iloc[0]} at {t.image_size.iloc[0]}px, batch {t.batch_size.iloc[0]}, "
            f"precision {t.precision.iloc[0]}, backend {env['backend']}, XLA {t.xla.iloc[0]}; "
            f"{env['cpu']} ({env['cpu_count']} cores), {env['date']}\n"
            f"images/s: median of the timed runs (min, max); utilisation: achieved multiply-adds/s "
            f"over a {env['matmul_size']}-square matrix product's "
            f"{env['matmul_macs_per_s'] / 1e9:,.1f} G multiply-adds/s{paired}\n")
    return head + shown.to_string(index=False) + "".join(f"\nnote: {n}" for n in report.notes)


# ---------------------------------------------------------------- in the fresh process

def _child(request: dict) -> dict:
    if request["job"] == "matmul":
        return _matmul_rate(request)
    if request["job"] == "paired":
        return _paired_child(request)
    if request["implementation"] == "timm":
        return _timm_child(request)
    return _keras_child(request)


def time_steps(step, warmup: int, repeats: int, steps: int) -> list[float]:
    """Seconds per step of ``repeats`` timed runs of ``steps`` calls, after ``warmup`` calls
    (give at least one unless ``step`` already ran: the first call traces and compiles).
    ``step`` must block until its work is done."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        times.append((time.perf_counter() - start) / steps)
    return times


def _set_precision(precision: str):
    import keras

    keras.config.set_dtype_policy(PRECISIONS[precision])


def _matmul_rate(request: dict, n: int = 2048, repeats: int = 5) -> dict:
    import keras
    import numpy as np

    _set_precision(request["precision"])
    layer_in = keras.Input((n,))
    model = keras.Model(layer_in, keras.layers.Dense(n, use_bias=False)(layer_in))
    model.compile(jit_compile=XLA[request["xla"]])
    x = np.random.default_rng(0).standard_normal((n, n)).astype("float32")
    times = time_steps(lambda: model.predict_on_batch(x), 1, repeats, 1)
    return dict(n=n, macs_per_s=n**3 / statistics.median(times))


def _keras_synthetic_model(model, image_size: int):
    """``model`` behind a layer that draws the images inside the step from the labels' batch."""
    import keras

    class SyntheticImages(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(dtype="float32", **kwargs)
            self.seed = keras.random.SeedGenerator(0)

        def call(self, labels):
            batch = keras.ops.shape(labels)[0]
            return keras.random.uniform((batch, image_size, image_size, 3), 0.0, 255.0,
                                        seed=self.seed)

    labels = keras.Input(shape=(), dtype="int32", name="labels")
    return keras.Model(labels, model(SyntheticImages(name="synthetic_images")(labels)))


def _build_keras(request: dict):
    import keras

    size, classes = request["image_size"], request["num_classes"]
    if request["implementation"] == "keras":
        build = getattr(keras.applications, f"EfficientNet{request['size_name']}")
        return build(weights=None, input_shape=(size, size, 3), classes=classes,
                     classifier_activation=None)
    from .efficientnet import build_model

    return build_model(request["name"], image_size=size, num_classes=classes,
                       conv_impl=request["conv_impl"], **request.get("overrides", {}))


def _device_peak():
    """(peak bytes, what was measured) on the accelerator, or None on a CPU."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.local_devices()[0]
        if device.platform != "cpu":
            stats = device.memory_stats() or {}
            if "peak_bytes_in_use" in stats:
                return stats["peak_bytes_in_use"], f"{device.device_kind} allocator peak"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return tf.config.experimental.get_memory_info("GPU:0")["peak"], "GPU:0 allocator peak"
    return None


def _keras_step(request: dict):
    """(the network, a blocking step function, the compiled model) for one Keras job."""
    import keras
    import numpy as np

    net = _build_keras(request)
    model = _keras_synthetic_model(net, request["image_size"])
    xla = XLA[request["xla"]]
    labels = np.arange(request["batch_size"], dtype="int32") % request["num_classes"]
    if request["mode"] == "train":
        model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-4, momentum=0.9,
                                                         epsilon=1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=xla)
        return net, (lambda: model.train_on_batch(labels, labels)), model
    model.compile(jit_compile=xla)
    return net, (lambda: model.predict_on_batch(labels)), model


def _keras_child(request: dict) -> dict:
    import numpy as np

    _set_precision(request["precision"])
    baseline = rss_bytes()
    net, step, model = _keras_step(request)
    times = time_steps(step, max(request["warmup"], 1), request["repeats"], request["steps"])
    device = _device_peak()
    peak, measure = device or (peak_rss_bytes() - baseline, "CPU peak RSS growth")
    return dict(seconds_per_step=times, peak_bytes=peak, memory_measure=measure,
                xla=str(getattr(model, "jit_compile", XLA[request["xla"]])), model=net.name,
                params=int(sum(np.prod(w.shape) for w in net.trainable_weights)))


def _paired_child(request: dict) -> dict:
    """Both implementations in one process, their timed runs alternating (A B A B ...):
    drift of a shared machine's speed then hits both alike, which the ratio needs."""
    _set_precision(request["precision"])
    steps = {}
    for implementation in request["implementations"]:
        _, step, _ = _keras_step(dict(request, implementation=implementation))
        for _ in range(max(request["warmup"], 1)):
            step()
        steps[implementation] = step
    times = {implementation: [] for implementation in steps}
    for _ in range(request["repeats"]):
        for implementation, step in steps.items():
            times[implementation] += time_steps(step, 0, 1, request["steps"])
    return dict(seconds_per_step=times)


def _timm_child(request: dict) -> dict:
    import timm
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = timm.create_model(f"efficientnet_{request['size_name'].lower()}", pretrained=False,
                            num_classes=request["num_classes"]).to(device)
    size, batch = request["image_size"], request["batch_size"]
    labels = torch.arange(batch, device=device) % request["num_classes"]
    dtype = {"32": None, "16": torch.float16, "bf16": torch.bfloat16}[request["precision"]]
    optimizer = torch.optim.RMSprop(net.parameters(), lr=1e-4, momentum=0.9, eps=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    baseline = rss_bytes()

    def images():
        return torch.rand(batch, 3, size, size, device=device) * 255.0

    def train_step():
        net.train()
        with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
            loss = loss_fn(net(images()), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    @torch.no_grad()
    def infer_step():
        net.eval()
        with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
            return net(images()).float().sum().item()

    step = train_step if request["mode"] == "train" else infer_step
    times = time_steps(step, max(request["warmup"], 1), request["repeats"], request["steps"])
    if device == "cuda":
        peak, measure = torch.cuda.max_memory_allocated(), "CUDA allocator peak"
    else:
        peak, measure = peak_rss_bytes() - baseline, "CPU peak RSS growth"
    return dict(seconds_per_step=times, peak_bytes=peak, memory_measure=measure, xla="eager",
                model=f"timm efficientnet_{request['size_name'].lower()}",
                params=int(sum(p.numel() for p in net.parameters() if p.requires_grad)))


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
