"""How the benchmarks time things and describe where they ran.

* :func:`time_steps`: warm-up, then repeated timed runs of a blocking step;
* :func:`matmul_rate`: a large matrix product's multiply-adds per second, the
  yardstick of model FLOP utilisation;
* :func:`device_peak`: the accelerator allocator's peak memory, where there is one;
* :func:`environment`: hardware, backend, versions and date, saved with every result.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import time

from ..common.precision import precision

XLA = {"auto": "auto", "on": True, "off": False}


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


def set_precision(name: str) -> None:
    """Keras's global dtype policy for a benchmark process (it measures one precision)."""
    import keras

    keras.config.set_dtype_policy(precision(name).policy)


def matmul_rate(request: dict, n: int = 2048, repeats: int = 5) -> dict:
    """Multiply-adds per second of an ``n x n`` matrix product at the request's precision and XLA."""
    import keras
    import numpy as np

    set_precision(request["precision"])
    layer_in = keras.Input((n,))
    model = keras.Model(layer_in, keras.layers.Dense(n, use_bias=False)(layer_in))
    model.compile(jit_compile=XLA[request["xla"]])
    x = np.random.default_rng(0).standard_normal((n, n)).astype("float32")
    times = time_steps(lambda: model.predict_on_batch(x), 1, repeats, 1)
    return dict(n=n, macs_per_s=n**3 / statistics.median(times))


def device_peak():
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


def environment(backend: str) -> dict:
    """Date, backend, CPU, platform and package versions of this measurement."""
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
    return dict(date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                backend=backend, cpu=cpu, cpu_count=os.cpu_count(), platform=platform.platform(),
                python=platform.python_version(),
                versions={p: version(p) for p in ("keras", "tensorflow", "tensorflow-cpu", "jax",
                                                  "jaxlib", "torch", "timm", "numpy")})
