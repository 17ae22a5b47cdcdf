"""The benchmarks' measuring processes: one job per fresh process (:func:`run_job`).

Jobs: ``matmul`` (the yardstick), ``model`` (one implementation, one mode),
``paired`` (two implementations alternating: in one process, or with timm in
separate processes taking turns, :mod:`.turns`) and, for ``timm``, its PyTorch
counterpart. Images are drawn at random inside the compiled step
(:class:`effnet_lib.data.synthetic.SyntheticImages`): only the labels travel.
"""

from __future__ import annotations

from ..common.fresh_process import peak_rss_bytes, rss_bytes
from ..common.optimizer_slots import build_optimizer_slots
from .timing import XLA, device_peak, matmul_rate, set_precision, time_steps


def run_job(request: dict) -> dict:
    """The measuring process's entry point (see :mod:`effnet_lib.common.fresh_process`)."""
    if request["job"] == "matmul":
        return matmul_rate(request)
    if request["job"] == "paired":
        return paired_job(request)
    if request["job"] == "interleaved":
        return interleaved_job(request)
    if request["implementation"] == "timm":
        return timm_job(request)
    return keras_job(request)


def build_network(request: dict):
    """The network to time: keras.applications' EfficientNet or this kit's model."""
    import keras

    size, classes = request["image_size"], request["num_classes"]
    if request["implementation"] == "keras":
        build = getattr(keras.applications, f"EfficientNet{request['size_name']}")
        return build(weights=None, input_shape=(size, size, 3), classes=classes,
                     classifier_activation=None)
    if request.get("exported"):  # an `effnet export` folder, loaded as a server would
        from pathlib import Path

        from ..models import register_layers

        register_layers()

        return keras.saving.load_model(Path(request["exported"]) / "model.keras", safe_mode=True)
    from ..models.builder import build_model
    from ..models.spec import EfficientNetSpec

    return build_model(EfficientNetSpec.from_dict(request["spec"]), image_size=size,
                       num_classes=classes, conv_impl=request["conv_impl"])


def keras_step(request: dict):
    """(the network, a blocking step function, the compiled model) for one Keras job."""
    import keras
    import numpy as np

    from ..data.synthetic import with_synthetic_images

    net = build_network(request)
    model = with_synthetic_images(net, request["image_size"], seed=0)
    xla = XLA[request["xla"]]
    labels = np.arange(request["batch_size"], dtype="int32") % request["num_classes"]
    if request["mode"] == "train":
        model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-4, momentum=0.9,
                                                         epsilon=1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=xla)
        build_optimizer_slots(model)
        return net, (lambda: model.train_on_batch(labels, labels)), model
    model.compile(jit_compile=xla)
    return net, (lambda: model.predict_on_batch(labels)), model


def keras_job(request: dict) -> dict:
    import numpy as np

    set_precision(request["precision"])
    baseline = rss_bytes()
    net, step, model = keras_step(request)
    times = time_steps(step, max(request["warmup"], 1), request["repeats"], request["steps"])
    peak, measure = device_peak() or (peak_rss_bytes() - baseline, "CPU peak RSS growth")
    return dict(seconds_per_step=times, peak_bytes=peak, memory_measure=measure,
                xla=str(getattr(model, "jit_compile", XLA[request["xla"]])), model=net.name,
                params=int(sum(np.prod(w.shape) for w in net.trainable_weights)))


def paired_job(request: dict) -> dict:
    """Both implementations' timed runs alternating (A B A B ...): drift of a shared machine's
    speed then hits both alike, which the ratio needs. Keras's and this kit's models share
    this process; timm's runs in a process of its own (:mod:`.turns`: in one process with
    TensorFlow working, PyTorch's steps slowed down)."""
    requests = {implementation: dict(request, implementation=implementation)
                for implementation in request["implementations"]}
    if "timm" in requests:
        from .turns import alternate_in_processes

        return dict(seconds_per_step=alternate_in_processes(requests, request["repeats"],
                                                            request["steps"]))
    return dict(seconds_per_step=_alternate(request, requests))


def interleaved_job(request: dict) -> dict:
    """Several models of this kit (each its own spec and image size) in one process, their
    timed runs taking turns: the ratios between them are what the drift cannot reach."""
    requests = {variant["label"]: dict(request, implementation="effnet-kit", spec=variant["spec"],
                                       image_size=variant["image_size"])
                for variant in request["variants"]}
    return dict(seconds_per_step=_alternate(request, requests))


def _alternate(request: dict, requests: dict) -> dict:
    set_precision(request["precision"])
    steps = {}
    for name, one in requests.items():
        _, step, _ = keras_step(one)
        for _ in range(max(request["warmup"], 1)):
            step()
        steps[name] = step
    times = {name: [] for name in steps}
    for _ in range(request["repeats"]):
        for name, step in steps.items():
            times[name] += time_steps(step, 0, 1, request["steps"])
    return times


TORCH_DTYPES = {"float32": None, "mixed_float16": "float16", "float16": "float16",
                "mixed_bfloat16": "bfloat16"}


def timm_step(request: dict):
    """(the network, a blocking step function, the device) for one timm job: timm's
    EfficientNet matched to the request's spec (:mod:`.timm_models`), channels-last."""
    import torch

    from ..common.precision import precision
    from ..models.spec import EfficientNetSpec
    from .timm_models import timm_network

    device = "cuda" if torch.cuda.is_available() else "cpu"
    # Channels-last: the memory layout timm recommends for speed on CPUs and recent GPUs
    # (the Keras models here are NHWC too).
    layout = torch.channels_last
    spec = EfficientNetSpec.from_dict(request["spec"])
    net = timm_network(spec, request["num_classes"]).to(device, memory_format=layout)
    size, batch = request["image_size"], request["batch_size"]
    labels = torch.arange(batch, device=device) % request["num_classes"]
    dtype_name = TORCH_DTYPES[precision(request["precision"]).policy]
    dtype = getattr(torch, dtype_name) if dtype_name else None
    optimizer = torch.optim.RMSprop(net.parameters(), lr=1e-4, momentum=0.9, eps=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def images():
        return (torch.rand(batch, 3, size, size, device=device) * 255.0).contiguous(
            memory_format=layout)

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

    return net, (train_step if request["mode"] == "train" else infer_step), device


def timm_job(request: dict) -> dict:
    import torch

    from ..models.spec import EfficientNetSpec
    from .timm_models import timm_name

    baseline = rss_bytes()
    net, step, device = timm_step(request)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = time_steps(step, max(request["warmup"], 1), request["repeats"], request["steps"])
    if device == "cuda":
        peak, measure = torch.cuda.max_memory_allocated(), "CUDA allocator peak"
    else:
        peak, measure = peak_rss_bytes() - baseline, "CPU peak RSS growth"
    return dict(seconds_per_step=times, peak_bytes=peak, memory_measure=measure,
                xla="eager, channels-last",
                model=timm_name(EfficientNetSpec.from_dict(request["spec"])),
                params=int(sum(p.numel() for p in net.parameters() if p.requires_grad)))


def serve_turns(request: dict) -> None:
    """One implementation's process for :func:`.turns.alternate_in_processes`."""
    from ..models.spec import EfficientNetSpec
    from .turns import serve

    # A request naming no valid network fails here, before seconds of loading a framework.
    EfficientNetSpec.from_dict(request["spec"])
    if request["implementation"] == "timm":
        _, step, _ = timm_step(request)
    else:
        set_precision(request["precision"])
        _, step, _ = keras_step(request)
    serve(step, request["warmup"])


if __name__ == "__main__":
    import json
    import sys

    serve_turns(json.loads(sys.argv[1]))
