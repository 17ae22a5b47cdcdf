"""The network: EfficientNet B0-B7 as data (:mod:`.spec`) and as Keras layers (:mod:`.builder`).

* :mod:`.spec` and :mod:`.rounding`: the architecture as plain data, decoded into
  one :class:`BlockConfig` per MBConv block; no Keras;
* :mod:`.norms`: the norm + activation factory (BN, GN, LN, and Proxy Norm after them);
* :mod:`.proxy_norm`, :mod:`.image_normalization`, :mod:`.grouped_conv`: the custom layers;
* :mod:`.conv_impl`: which grouped-convolution implementation is fastest here;
* :mod:`.builder`: ``build_model``; :mod:`.summary`: the per-block table;
  :mod:`.keras_weights`: ``keras.applications`` weights into a G1-BN model.

Keras loads only when a layer is needed: the spec side stays importable without it.
"""

from .norms import NORMS
from .rounding import conv_groups, largest_divisor_at_most, round_filters, round_repeats
from .spec import BlockConfig, EfficientNetSpec, as_spec, valid_model_names, validate_splits

__all__ = ["NORMS", "BlockConfig", "EfficientNetSpec", "as_spec", "build_model", "conv_groups",
           "largest_divisor_at_most", "round_filters", "round_repeats",
           "register_layers", "transfer_keras_applications_weights", "valid_model_names",
           "validate_splits"]


def register_layers() -> None:
    """Import every module that registers a custom layer with Keras, so that a saved model
    (``model.keras``, an export) loads in safe mode in a process that built nothing."""
    from . import grouped_conv, image_normalization, inference_rewrite, proxy_norm  # noqa: F401


def __getattr__(name):
    if name == "build_model":
        from .builder import build_model
        return build_model
    if name == "transfer_keras_applications_weights":
        from .keras_weights import transfer_keras_applications_weights
        return transfer_keras_applications_weights
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
