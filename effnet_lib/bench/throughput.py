"""Measured throughput: images per second, step latency and peak memory.

The paper's argument is about measured speed, not multiply-adds, so this module
times real training and inference steps of a model beside reference
implementations of the same network, in the same run, on the same data:

* ``effnet-kit``: :func:`effnet_lib.build_model` of the model or case.
* ``keras``: ``keras.applications.EfficientNetBn`` of the same size, same backend.
* ``timm``: ``timm``'s ``efficientnet_bn`` on PyTorch, or for the paper's variants timm's
  EfficientNet built with the same stages, groups and norm (:mod:`.timm_models`), when torch
  and timm are installed (skipped with a note otherwise).

How it measures, so that the numbers mean one thing:

* Every measurement runs in a fresh process (:mod:`effnet_lib.common.fresh_process`,
  jobs in :mod:`.steps`): nothing compiled or allocated by another model is there,
  and the peak memory is this model's.
* Images are drawn at random *inside the compiled step*: only the labels, a few
  bytes, travel, so the input pipeline is not measured.
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

import dataclasses
import json
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..common.files import atomic_write, write_text
from ..common.fresh_process import run_in_fresh_process
from ..common.precision import precision as precision_entry
from ..models.spec import EfficientNetSpec
from ..profiling import profile
from ..training.cases import resolve_spec
from .timing import XLA, environment
from .references import reference_available, reference_differences
from .timm_models import is_standard

MODES = ("train", "infer")
REFERENCES = ("keras", "timm")
TRAIN_FORWARD_PASSES = 3
MIB = 2**20
JOB = "effnet_lib.bench.steps:run_job"


@dataclass
class BenchmarkReport:
    """The measurements of one ``benchmark`` run: a table and its environment."""

    table: pd.DataFrame
    environment: dict
    notes: list = field(default_factory=list)

    def save(self, output_dir) -> list[Path]:
        """Write the table (CSV) and table + environment + notes (JSON) into ``output_dir``."""
        out = Path(output_dir)
        stamp = self.environment["date"].replace(":", "").replace("-", "")[:15]
        first = self.table.iloc[0]
        base = out / f"benchmark-{first['model']}-{first['image_size']}px-b{first['batch_size']}-{stamp}"
        payload = dict(environment=self.environment, notes=self.notes,
                       results=json.loads(self.table.to_json(orient="records")))
        return [atomic_write(base.with_suffix(".csv"), lambda t: self.table.to_csv(t, index=False)),
                write_text(base.with_suffix(".json"), json.dumps(payload, indent=2) + "\n")]


def benchmark(name, image_size: int | None = None, batch_size: int = 32, precision: str = "32",
              mode: str = "both", xla: str = "auto", references=("keras", "timm"),
              warmup: int = 2, repeats: int = 5, steps: int = 3, num_classes: int = 1000,
              conv_impl: str = "auto", backend: str | None = None, progress=print,
              timeout: float = 1800, exported: str | None = None) -> BenchmarkReport:
    """Measure a model (and its references) and return a table with ratios.

    Args:
        name: a model (``"B0-G16-LN_PN"``) or case name.
        image_size: input size (default: the model's or case's).
        batch_size: images per step.
        precision: a name of :mod:`effnet_lib.common.precision`: ``"32"``, ``"16"`` (mixed
            float16), ``"bf16"`` (mixed bfloat16), ``"16.16"`` ...
        mode: ``"train"``, ``"infer"`` or ``"both"``.
        xla: ``"auto"`` (Keras's choice: XLA on accelerators, not on CPUs with
            TensorFlow), ``"on"`` or ``"off"``.
        references: any of ``"keras"``, ``"timm"``; the reference must be a
            standard network size (B0-B7); timm is skipped when not installed.
        warmup, repeats, steps: warm-up steps, timed runs, steps per timed run.
        backend: the Keras backend to measure (default: ``$KERAS_BACKEND`` or tensorflow).
        exported: an ``effnet export`` folder to time instead of a freshly built model
            (inference only; ``name``, the size and the classes come from its export.json).
    """
    notes, spec = [], None
    if exported:
        spec, image_size, num_classes, mode, note = _exported_request(exported, image_size,
                                                                      num_classes, mode)
        notes += [note] if note else []
    request = check_request(locals())
    request["exported"] = str(exported) if exported else None
    spec = spec or resolve_spec(name)
    request["image_size"] = request["image_size"] or spec.resolution
    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    say = progress or (lambda *_: None)
    implementations = ["effnet-kit"]
    for reference in references:
        available, note = reference_available(reference, spec)
        if note:
            notes.append(note)
            say(note)
        if available:
            implementations.append(reference)
            notes += reference_differences(reference, spec)
    # Mode by mode, so that the runs compared in a ratio are next to each other in time
    # (a shared machine's speed drifts over minutes).
    jobs = [(implementation, m) for m in request["modes"] for implementation in implementations]
    matmul = _measure_matmul(request, backend, say, timeout)
    rows = [_measure(spec, request, implementation, mode_, matmul, backend, say, timeout)
            for implementation, mode_ in jobs]
    table = _with_ratios(pd.DataFrame(rows))
    table = _with_paired_ratios(table, spec, request, implementations[1:], backend, say,
                                timeout)
    env = dict(environment(backend), matmul_macs_per_s=matmul["macs_per_s"],
               matmul_size=matmul["n"], request=request)
    return BenchmarkReport(table, env, notes)


def _exported_request(folder, image_size, num_classes, mode):
    """(spec, image size, classes, mode, a note or None) for timing an exported folder."""
    from ..models.spec import EfficientNetSpec
    from ..training.inference import EXPORT_META

    path = Path(folder).expanduser() / EXPORT_META
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: not an `effnet export` folder (no {EXPORT_META}).")
    meta = json.loads(path.read_text())
    if image_size not in (None, meta["image_size"]):
        raise ValueError(f"{folder} takes {meta['image_size']} px images (its input is fixed); "
                         f"drop --image-size or export at {image_size} px.")
    classes = len(meta["class_names"]) if meta.get("class_names") else num_classes
    note = None
    if mode != "infer":
        note = f"{folder}: an exported model is timed for inference only."
    spec = (EfficientNetSpec.from_dict(meta["spec"]) if meta.get("spec")
            else resolve_spec(meta["name"]))
    return spec.replace(num_classes=classes), meta["image_size"], classes, "infer", note


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
    if not entries:
        raise ValueError("entries is empty: give at least one dict(label=, name=, image_size=).")
    request = check_request(dict(image_size=None, batch_size=batch_size, precision=precision,
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
        spec = resolve_spec(entry["name"], **dict(entry.get("overrides") or {}))
        at_size = dict(request, image_size=entry["image_size"])
        for mode_ in request["modes"]:
            row = _measure(spec, at_size, "effnet-kit", mode_, matmul, backend, say, timeout,
                           isolate)
            rows.append(dict(label=entry["label"], **row))
    env = dict(environment(backend), matmul_macs_per_s=matmul["macs_per_s"],
               matmul_size=matmul["n"], request=request)
    return BenchmarkReport(pd.DataFrame(rows), env, [])


def measure_interleaved(entries, reference: str, batch_size: int = 8, mode: str = "train",
                        precision: str = "32", warmup: int = 2, repeats: int = 5, steps: int = 2,
                        num_classes: int = 1000, conv_impl: str = "auto", isolate: bool = True,
                        progress=print, timeout: float = 1800) -> pd.DataFrame:
    """Training (or inference) speed of several models, timed in turns in one process.

    ``entries``: dicts with ``label``, ``name`` (model or case), ``image_size`` and optional
    ``overrides``. Each round times every model once (``steps`` steps) in turn, so a drift
    of the machine's speed hits all of them alike; ``repeats`` rounds. Returns one row per
    model: images/s (median and 95% interval over the rounds) and its speed relative to
    ``reference`` (the geometric mean over rounds of the per-round ratio, with its 95%
    interval).
    """
    from ..common.stats import mean_ci, ratio_ci

    if reference not in [e["label"] for e in entries]:
        raise ValueError(f"reference={reference!r} is not one of the entries' labels.")
    request = check_request(dict(image_size=None, batch_size=batch_size, precision=precision,
                                 mode=mode, xla="auto", references=(), warmup=warmup,
                                 repeats=repeats, steps=steps, num_classes=num_classes,
                                 conv_impl=conv_impl))
    variants = [dict(label=e["label"], image_size=e["image_size"],
                     spec=dataclasses.asdict(resolve_spec(e["name"], **dict(e.get("overrides") or {}))))
                for e in entries]
    (progress or (lambda *_: None))(
        f"timing {len(variants)} models in turns ({mode}, batch {batch_size}, {repeats} rounds) ...")
    job = dict(request, job="interleaved", mode=mode, variants=variants)
    times = _run(job, None, timeout, isolate)["seconds_per_step"]
    rows = []
    for entry, variant in zip(entries, variants):
        per_round = [batch_size / t for t in times[entry["label"]]]
        speed = mean_ci(per_round)
        ratio = ratio_ci([r / t for r, t in zip(times[reference], times[entry["label"]])])
        rows.append(dict(label=entry["label"], model=resolve_spec(entry["name"]).name,
                         image_size=entry["image_size"], mode=mode, batch_size=batch_size,
                         images_per_s=statistics.median(per_round), images_per_s_ci95=speed.half_width,
                         speedup=ratio.mean, speedup_low=ratio.low, speedup_high=ratio.high,
                         rounds=repeats, seconds_per_step=times[entry["label"]]))
    return pd.DataFrame(rows)


def _run(job: dict, backend, timeout, isolate=True) -> dict:
    if isolate:
        return run_in_fresh_process(JOB, job, timeout=timeout, backend=backend)
    from .steps import run_job

    return run_job(job)


def _measure_matmul(request, backend, say, timeout, isolate=True) -> dict:
    say(f"measuring the matrix-multiply rate ({backend}, "
        f"{precision_entry(request['precision']).policy}) ...")
    return _run(dict(job="matmul", **request), backend, timeout, isolate)


def _measure(spec, request, implementation, mode, matmul, backend, say, timeout,
             isolate=True) -> dict:
    say(f"measuring {implementation} {mode} ({spec.name} at {request['image_size']}px, "
        f"batch {request['batch_size']}) ...")
    job = dict(request, job="model", implementation=implementation, mode=mode,
               spec=dataclasses.asdict(spec), size_name=spec.size_name)
    result = _run(job, None if implementation == "timm" else backend, timeout, isolate)
    if not isolate:
        import keras

        result["memory_measure"] += " (shared process: not this model's alone)"
        result["peak_bytes"] = max(result["peak_bytes"], 0)
        keras.backend.clear_session()
    return table_row(spec, request, implementation, mode, result, matmul)


def check_request(args: dict) -> dict:
    """The validated measuring request shared by every job of a run."""
    def positive(name, value, low=1):
        if not (isinstance(value, int) and value >= low):
            raise ValueError(f"{name}={value!r}: it must be an integer >= {low}.")
        return value

    precision_entry(args["precision"])  # a clear error for a name the table lacks
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


def table_row(spec, request, implementation, mode, result, matmul) -> dict:
    """One row of the benchmark's table from one measuring job's ``result``: images/s with
    the runs' range, step time, memory, multiply-adds/s and utilisation of ``matmul``'s rate."""
    size = request["image_size"]
    # The multiply-adds of the network each implementation ran: keras.applications has only
    # the standard networks, so for a variant its row counts the standard one's.
    counted = (EfficientNetSpec.preset(spec.size_name)
               if implementation == "keras" and not is_standard(spec) else spec)
    forward = profile(counted.replace(num_classes=request["num_classes"]), image_size=size).macs
    passes = TRAIN_FORWARD_PASSES if mode == "train" else 1
    times = result["seconds_per_step"]
    median = statistics.median(times)
    per_s = [request["batch_size"] / t for t in times]
    macs_per_s = forward * passes * request["batch_size"] / median
    name = spec.name if implementation == "effnet-kit" else result["model"]
    if implementation == "effnet-kit" and request.get("exported"):
        name += f" (exported: {request['exported']})"
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


def _with_paired_ratios(table, spec, request, references, backend, say, timeout) -> pd.DataFrame:
    """``speed_vs_<reference>_paired``: the ratio from this kit's model's and the reference's
    timed runs alternating (in one process for Keras, in two taking turns for timm)."""
    for reference in references:
        paired = {}
        for mode in request["modes"]:
            where = "taking turns" if reference == "timm" else "alternately in one process"
            say(f"measuring effnet-kit and {reference} {mode} {where} ...")
            job = dict(request, job="paired", mode=mode, spec=dataclasses.asdict(spec),
                       size_name=spec.size_name,
                       implementations=["effnet-kit", reference])
            times = _run(job, backend, timeout)["seconds_per_step"]
            paired[mode] = (statistics.median(times[reference])
                            / statistics.median(times["effnet-kit"]))
        table[f"speed_vs_{reference}_paired"] = [
            paired.get(row.mode) if row.implementation == "effnet-kit" else None
            for row in table.itertuples()]
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


def format_table(report: BenchmarkReport) -> str:
    """The table a person reads: one line per implementation and mode."""
    t = report.table
    columns = ["implementation", "mode", "images_per_s", "images_per_s_min", "images_per_s_max",
               "step_ms", "peak_memory_mib", "achieved_macs_per_s_G", "utilisation"]
    columns += [c for c in t.columns if c.startswith("speed_vs_")]
    paired = ("\nspeed_vs_<reference>_paired: the ratio from the two models' runs alternating "
              "(Keras's in one process, timm's in its own process taking turns; drift cancels: "
              "the fairer figure)"
              ) if any(c.endswith("_paired") for c in t.columns) else ""
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
