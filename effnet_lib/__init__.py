"""effnet-kit: EfficientNet with group convolutions, batch-independent norms and
reduced-resolution training (Masters et al., 2021), on TensorFlow 2 + Keras 3."""

from .cases import CaseConfig, case_names, load_case, load_cases, resolve_spec
from .spec import BlockConfig, EfficientNetSpec, conv_groups, round_filters, round_repeats

__version__ = "0.1.0"

__all__ = [
    "BlockConfig", "CaseConfig", "EfficientNetSpec", "build_model", "case_names", "conv_groups",
    "load_case", "load_cases", "make_dataset", "profile", "resolve_spec", "round_filters", "round_repeats",
    "transfer_keras_applications_weights",
]


def __getattr__(name):
    # Keras (and its backend) load only when a model is needed, so that spec and
    # case handling, and `effnet --help`, stay fast.
    if name == "build_model":
        from .efficientnet import build_model
        return build_model
    if name in ("profile", "Profile"):
        from . import flops
        return getattr(flops, name)
    if name == "make_dataset":
        from .data import make_dataset
        return make_dataset
    if name == "transfer_keras_applications_weights":
        from .keras_weights import transfer_keras_applications_weights
        return transfer_keras_applications_weights
    raise AttributeError(f"module 'effnet_lib' has no attribute {name!r}")
