"""The paper's 30 training cases (``configs.yml``) as typed, validated configs.

IPU vocabulary is kept and mapped onto TF/Keras by the training engine:

* ``replicas`` -> data-parallel replicas of ``tf.distribute`` (one device, a
  ``MirroredStrategy`` over GPUs, or ``MultiWorkerMirroredStrategy``);
* ``pipeline_stages`` / ``pipeline_splits`` -> no TF/Keras counterpart: a stage is
  a slice of the model on its own IPU. The kit keeps them as data (the profiler
  reports the stages' balance) and preserves the global batch through gradient
  accumulation instead;
* ``gradient_accumulation_count`` -> Keras optimiser gradient accumulation;
* ``precision`` "16.32" -> mixed float16 with float32 master weights, "16.16" ->
  float16 throughout, "32.32" -> float32.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from .spec import EfficientNetSpec, closest

DEFAULT_CONFIG_PATH = Path(__file__).with_name("configs.yml")
PRECISIONS = ("32.32", "16.32", "16.16")
RESOLUTIONS = ("native", "half")


@dataclass(frozen=True)
class CaseConfig:
    """One training case. ``load_case`` fills it from ``configs.yml``."""

    name: str
    model: str
    resolution: str
    image_size: int
    micro_batch_size: int
    replicas: int
    pipeline_stages: int
    gradient_accumulation_count: int
    pipeline_splits: tuple[str, ...] = ()
    mixup_alpha: float = 0.0
    cutmix_lambda: float | None = None
    optimiser: str = "RMSprop"
    base_learning_rate_exponent: float = -14
    rmsprop_base_decay_exponent: float = -14
    rmsprop_epsilon: float = 1e-3
    momentum: float = 0.9
    epochs: float = 350
    warmup_epochs: float = 5
    lr_schedule: str = "exponential"
    lr_decay_rate: float = 0.97
    lr_decay_epochs: float = 2.4
    label_smoothing: float = 0.1
    weight_decay: float = 1e-5
    loss_scaling: float = 128
    precision: str = "16.32"
    weight_avg_exp: float = 0.97
    norm_epsilon: float = 1e-3
    gn_groups: int = 4
    proxy_epsilon: float = 0.03

    def __post_init__(self):
        object.__setattr__(self, "pipeline_splits", tuple(self.pipeline_splits or ()))
        positive_ints = ("image_size", "micro_batch_size", "replicas", "pipeline_stages",
                         "gradient_accumulation_count", "gn_groups")
        for name in positive_ints:
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"Case {self.name!r}: {name}={value!r} is not valid: "
                                 f"it must be an integer >= 1.")
        if self.precision not in PRECISIONS:
            raise ValueError(f"Case {self.name!r}: precision={self.precision!r} is not valid: "
                             f"accepted {', '.join(PRECISIONS)}.")
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"Case {self.name!r}: resolution={self.resolution!r} is not valid: "
                             f"accepted {', '.join(RESOLUTIONS)}.")
        for name in ("epochs", "label_smoothing", "weight_decay", "mixup_alpha", "warmup_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"Case {self.name!r}: {name}={getattr(self, name)!r} must be >= 0.")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"Case {self.name!r}: label_smoothing must be in [0, 1).")
        spec = self.model_spec()  # validates the model name and the spec fields
        if len(self.pipeline_splits) != self.pipeline_stages - 1:
            raise ValueError(f"Case {self.name!r}: {self.pipeline_stages} pipeline stages need "
                             f"{self.pipeline_stages - 1} pipeline_splits, got "
                             f"{list(self.pipeline_splits)}.")
        validate_splits(spec, self.pipeline_splits)

    # -- derived values -------------------------------------------------------
    @property
    def global_batch_size(self) -> int:
        return self.micro_batch_size * self.gradient_accumulation_count * self.replicas

    @property
    def ipus(self) -> int:
        return self.replicas * self.pipeline_stages

    @property
    def learning_rate(self) -> float:
        """Peak learning rate: ``2^exponent`` per sample of the global batch."""
        return 2.0 ** self.base_learning_rate_exponent * self.global_batch_size

    @property
    def rmsprop_rho(self) -> float:
        return 1.0 - 2.0 ** self.rmsprop_base_decay_exponent * self.global_batch_size

    def model_spec(self, **overrides) -> EfficientNetSpec:
        fields = dict(resolution=self.image_size, norm_epsilon=self.norm_epsilon,
                      gn_groups=self.gn_groups, proxy_epsilon=self.proxy_epsilon)
        fields.update(overrides)
        return EfficientNetSpec.from_name(self.model, **fields)

    def replace(self, **overrides) -> "CaseConfig":
        _check_fields(overrides, self.name)
        return dataclasses.replace(self, **overrides)


def resolve_spec(spec_or_name, **overrides) -> EfficientNetSpec:
    """An :class:`EfficientNetSpec` from a spec, a model name (``B0-G16-LN_PN``) or a case name."""
    if isinstance(spec_or_name, EfficientNetSpec):
        return spec_or_name.replace(**overrides) if overrides else spec_or_name
    if not isinstance(spec_or_name, str):
        raise TypeError(f"Expected an EfficientNetSpec, a model name or a case name, "
                        f"got {type(spec_or_name).__name__}.")
    looks_like_case = any(k in spec_or_name.lower() for k in ("native", "half", "ipu"))
    if spec_or_name in case_names() or looks_like_case:  # load_case names the closest cases
        return load_case(spec_or_name).model_spec().replace(**overrides)
    return EfficientNetSpec.from_name(spec_or_name, **overrides)


def validate_splits(spec: EfficientNetSpec, splits) -> None:
    """Pipeline splits must be block names of ``spec``, in increasing order."""
    names = spec.block_names()
    unknown = [s for s in splits if s not in names]
    if unknown:
        raise ValueError(f"Unknown pipeline split(s) {unknown} for {spec.name}: valid block "
                         f"names are {', '.join(names)}.")
    positions = [names.index(s) for s in splits]
    if positions != sorted(set(positions)) or (positions and positions[0] == 0):
        raise ValueError(f"Pipeline splits {list(splits)} must be distinct, in model order and "
                         f"after block1a (each split starts a new stage).")


@lru_cache(maxsize=8)
def _read_configs(path: str) -> dict:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"Config file {path!r} does not exist.")
    with open(file) as stream:
        data = yaml.safe_load(stream)
    if not isinstance(data, dict) or not isinstance(data.get("cases"), dict):
        raise ValueError(f"Config file {path!r} must hold a mapping with a 'cases' mapping "
                         f"(and optionally 'defaults').")
    return data


def case_names(path: str | Path | None = None) -> list[str]:
    return list(_read_configs(str(path or DEFAULT_CONFIG_PATH))["cases"])


def load_case(name: str, path: str | Path | None = None, **overrides) -> CaseConfig:
    """A case from ``configs.yml`` (or ``path``), with keyword overrides."""
    data = _read_configs(str(path or DEFAULT_CONFIG_PATH))
    cases = data["cases"]
    if name not in cases:
        hint = closest(name, cases)
        raise ValueError(f"Unknown case {name!r}." + (f" Did you mean {', '.join(hint)}?" if hint
                                                       else "") + " `effnet cases` lists them all.")
    fields = {**(data.get("defaults") or {}), **cases[name], **overrides}
    _check_fields(fields, name)
    return CaseConfig(name=name, **fields)


def load_cases(path: str | Path | None = None) -> list[CaseConfig]:
    return [load_case(name, path) for name in case_names(path)]


def _check_fields(fields: dict, case: str) -> None:
    valid = {f.name for f in dataclasses.fields(CaseConfig)} - {"name"}
    unknown = sorted(set(fields) - valid)
    if unknown:
        hints = {u: closest(u, valid, n=1) for u in unknown}
        detail = ", ".join(f"{u!r}" + (f" (did you mean {h[0]!r}?)" if h else "")
                           for u, h in hints.items())
        raise ValueError(f"Case {case!r}: unknown setting(s) {detail}. Valid settings: "
                         f"{', '.join(sorted(valid))}.")
