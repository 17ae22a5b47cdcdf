"""The one table of numeric precisions, in the paper's IPU spelling.

The paper writes precision as "compute.weights" bits: "16.32" is float16
arithmetic on float32 master weights. Each entry maps to a Keras dtype policy
and says how many bits an activation takes (the profiler's memory counts).
The short forms ``"32"`` and ``"16"`` name "32.32" and "16.32".

"16.16" (the reference's B5-G1-GN) kept float16 weights for compute *and* an fp32
master copy with fp32 optimiser slots (``--offload-fp32-weight-copy``), with loss
scaling 128. Keras cannot hold a float16 variable beside its float32 master; its
``mixed_float16`` stores float32 variables and casts them to float16 where they are
used, which computes with the same float16-rounded weights and updates the same
float32 master. So "16.16" maps to ``mixed_float16``, like "16.32", and says so.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    name: str            # the paper's spelling, e.g. "16.32"
    policy: str          # the Keras dtype policy it maps to
    activation_bits: int
    description: str
    note: str = ""       # where the mapping is not exact, said where a case is loaded

    @property
    def activation_bytes(self) -> int:
        return self.activation_bits // 8

    @property
    def loss_scaled(self) -> bool:
        """float16 arithmetic needs loss scaling to keep small gradients representable."""
        return self.policy in ("mixed_float16", "float16")


PRECISIONS = {p.name: p for p in (
    Precision("32.32", "float32", 32, "float32 throughout"),
    Precision("16.32", "mixed_float16", 16, "float16 compute, float32 master weights, loss scaling"),
    Precision("16.16", "mixed_float16", 16, "float16 compute and weights, fp32 master copy",
              note="precision 16.16 runs as mixed_float16 (float32 variables cast to float16 "
                   "for compute, float32 optimiser slots, static loss scaling): Keras cannot "
                   "keep float16 weights beside an fp32 master copy, and this computes with the "
                   "same float16 weights and updates the same fp32 master."),
    Precision("bf16", "mixed_bfloat16", 16, "bfloat16 compute, float32 weights"),
)}
SHORT_NAMES = {"32": "32.32", "16": "16.32"}
PRECISION_NAMES = (*PRECISIONS, *SHORT_NAMES)  # every spelling :func:`precision` accepts


def precision(name) -> Precision:
    """The table's entry for ``name`` (``"16.32"``, ``"32"``, ``"bf16"`` ...); a clear error otherwise."""
    key = SHORT_NAMES.get(str(name), str(name))
    if key not in PRECISIONS:
        accepted = ", ".join(PRECISION_NAMES)
        raise ValueError(f"precision={name!r}: accepted {accepted} ('16' is '16.32', '32' is '32.32').")
    return PRECISIONS[key]


@contextlib.contextmanager
def dtype_policy(name):
    """Keras's global dtype policy set to ``name``'s for the block, then restored."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision(name).policy)
    try:
        yield precision(name)
    finally:
        keras.config.set_dtype_policy(previous)
