"""Counting: multiply-adds, parameters and activation memory, exactly, from the architecture.

* :mod:`.counts`: :func:`profile` and its :class:`Profile` (per layer, block, stage);
* :mod:`.stages`: the balance of pipeline stages for a case's splits;
* :mod:`.memory`: the training-memory estimate, and a measured peak to check it against.
"""

from .counts import Profile, profile
from .memory import training_memory, validate_estimate
from .stages import balanced_splits, stage_balance

__all__ = ["Profile", "balanced_splits", "profile", "stage_balance", "training_memory", "validate_estimate"]
