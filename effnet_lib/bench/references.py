"""The peers a benchmark measures beside this kit's model: whether each can be measured for
a spec, and how its network differs from the spec's."""

from __future__ import annotations

from ..models.spec import PRESETS
from .timm_models import differences, is_standard


def reference_available(reference: str, spec) -> tuple[bool, str | None]:
    """Whether ``reference`` can be measured for ``spec``, and a note when it cannot."""
    standard = spec.size_name
    if standard not in PRESETS:
        return False, f"{reference}: no reference for {spec.name}"
    if reference == "timm":
        import importlib.util

        missing = [m for m in ("torch", "timm") if importlib.util.find_spec(m) is None]
        if missing:
            return False, (f"timm reference skipped: {' and '.join(missing)} not installed "
                           f"(pip install -e .[timm] to compare with timm's efficientnet_"
                           f"{standard.lower()})")
    return True, None


def reference_differences(reference: str, spec) -> list[str]:
    """Notes on how the reference's network differs from ``spec``'s."""
    if reference == "timm":
        return [f"timm: {d}" for d in differences(spec)]
    if not is_standard(spec):
        return [f"keras: keras.applications has only the standard networks: the reference is "
                f"{spec.size_name} (depthwise, BatchNorm), not {spec.name}"]
    return []
