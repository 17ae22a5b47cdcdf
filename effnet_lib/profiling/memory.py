"""Training memory: the profiler's estimate, and real training steps' measured peak to check it.

:func:`training_memory` is a model of memory: every layer output kept for the
backward pass, plus weights, gradients and optimiser slots. :func:`measure_peak`
measures: each run is a fresh Python process that imports the
backend, builds the model, compiles it with the recipe's optimiser (RMSprop with
momentum: two slots per weight, as the estimate assumes) and runs a few training
steps on random images. Its peak resident memory (``ru_maxrss``) minus its
resident memory just before the model was built is the measured cost of training.

Two comparisons come out, because they test different parts of the estimate:

* ``total``: measured peak against the estimate's total. The measurement also
  holds the framework's traced graphs, kernels' workspaces and the allocator's
  slack, which the estimate does not model.
* ``per_image``: the growth of the peak from one batch size to a larger one,
  per extra image, against the estimate's activations per image. Fixed costs
  (weights, optimiser state, graphs) cancel, so this checks the activation model.

Peak RSS is what the operating system saw, so it is a CPU measurement; on a GPU
use the device allocator's peak instead.
"""

from __future__ import annotations

from ..common.fresh_process import peak_rss_bytes, rss_bytes, run_in_fresh_process
from .counts import Profile, profile

MIB = 2**20



def training_memory(profile_: Profile, optimizer_slots: int = 2, weight_bytes: int = 4) -> dict:
    """An *estimate* of the memory one training step needs, in bytes.

    Model: every layer output listed by the profile is kept for the backward pass
    (at the profile's precision and batch size); weights, gradients and
    ``optimizer_slots`` optimiser slots per trainable parameter are held in
    ``weight_bytes`` each (float32 master weights; RMSprop with momentum keeps 2
    slots). Framework workspace, fused or recomputed activations and allocator
    fragmentation are not modelled, so real peaks differ.

    Checked against measured peaks (``effnet memory``, :func:`validate_estimate`;
    B0-G1-GN at 128 px, TF 2.21 on CPU, no XLA): a real step held 1.5x the
    estimated activations per extra image and 1.9x (batch 32) to 2.7x (batch 8)
    the estimated total, the difference being mostly fixed framework memory.
    """
    trainable = profile_.total_params
    parts = {
        "activations": profile_.activation_bytes,
        "weights": trainable * weight_bytes,
        "gradients": trainable * weight_bytes,
        "optimizer_state": optimizer_slots * trainable * weight_bytes,
    }
    parts["total"] = sum(parts.values())
    return parts


def measure_peak(name: str, image_size: int, batch_size: int, steps: int = 3,
                 num_classes: int = 10, jit_compile: bool = False, timeout: float = 900) -> dict:
    """Peak memory of ``steps`` training steps in a fresh process, in bytes.

    Returns ``{"baseline": RSS before the model, "peak": peak RSS, "measured":
    their difference, "seconds_per_step": ...}``. ``jit_compile`` picks XLA.
    """
    for label, value, low in (("image_size", image_size, 8), ("batch_size", batch_size, 1),
                              ("steps", steps, 1)):
        if not (isinstance(value, int) and value >= low):
            raise ValueError(f"{label}={value!r}: it must be an integer >= {low}.")
    request = dict(name=name, image_size=image_size, batch_size=batch_size, steps=steps,
                   num_classes=num_classes, jit_compile=jit_compile)
    return run_in_fresh_process("effnet_lib.profiling.memory:measure_child", request, timeout=timeout)


def validate_estimate(name: str = "B0-G1-GN", image_size: int = 128, batch_sizes=(8, 32),
                      steps: int = 3, jit_compile: bool = False, progress=None) -> dict:
    """Measure peak training memory at two batch sizes and compare with the estimate.

    Returns a dict with a ``rows`` list (one per batch size: measured and
    estimated MiB and their ratio) and ``per_image`` (measured growth of the peak
    per extra image against the estimated activations per image).
    """
    small, large = sorted(batch_sizes)
    if small == large:
        raise ValueError(f"batch_sizes={batch_sizes!r}: give two different batch sizes.")
    rows = []
    for batch in (small, large):
        if progress:
            progress(f"measuring {name} at {image_size}px, batch {batch} ...")
        measured = measure_peak(name, image_size, batch, steps=steps, jit_compile=jit_compile)
        estimate = training_memory(profile(name, image_size=image_size, batch_size=batch))
        rows.append(dict(model=name, image_size=image_size, batch_size=batch,
                         measured_mib=measured["measured"] / MIB,
                         estimate_mib=estimate["total"] / MIB,
                         estimate_activations_mib=estimate["activations"] / MIB,
                         ratio_measured_to_estimate=measured["measured"] / estimate["total"],
                         seconds_per_step=measured["seconds_per_step"]))
    grow = (rows[1]["measured_mib"] - rows[0]["measured_mib"]) / (large - small)
    per_image_estimate = rows[0]["estimate_activations_mib"] / small
    return dict(rows=rows, jit_compile=jit_compile,
                per_image=dict(measured_mib=grow, estimate_mib=per_image_estimate,
                               ratio=grow / per_image_estimate))


def measure_child(request: dict) -> dict:
    """In the fresh process: the baseline, the peak and the time per step of one measurement."""
    import time

    import keras
    import numpy as np

    from ..models.builder import build_model

    # Warm the backend up on a throwaway model so that its one-off start-up
    # allocations land in the baseline, not in the measurement.
    tiny = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)])
    tiny.compile(optimizer="sgd", loss="mse")
    tiny.train_on_batch(np.zeros((1, 8, 8, 3), "float32"), np.zeros((1, 6, 6, 4), "float32"))
    baseline = max(rss_bytes(), 0)

    size, batch = request["image_size"], request["batch_size"]
    model = build_model(request["name"], image_size=size, num_classes=request["num_classes"])
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-3, momentum=0.9,
                                                     epsilon=1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=request["jit_compile"])
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    labels = rng.integers(0, request["num_classes"], batch)
    model.train_on_batch(images, labels)  # traces and compiles
    start = time.perf_counter()
    for _ in range(request["steps"]):
        model.train_on_batch(images, labels)
    per_step = (time.perf_counter() - start) / request["steps"]
    peak = peak_rss_bytes()
    return dict(baseline=baseline, peak=peak, measured=peak - baseline, seconds_per_step=per_step)
