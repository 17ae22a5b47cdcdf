"""The paper's 30 training cases (``configs.yml``) as typed, validated configs.

A case is one run of the paper: the model, the batch layout on IPUs and the
recipe. Every field carries its meaning (``help``), which the command line turns
into ``effnet train`` options. IPU vocabulary is kept and mapped onto TF/Keras
by the training engine (:mod:`.plan`):

* ``replicas`` -> data-parallel replicas of ``tf.distribute`` (one device, a
  ``MirroredStrategy`` over GPUs, or ``MultiWorkerMirroredStrategy``);
* ``pipeline_stages`` / ``pipeline_splits`` -> no TF/Keras counterpart: a stage is
  a slice of the model on its own IPU. The kit keeps them as data (the profiler
  reports the stages' balance) and preserves the global batch through gradient
  accumulation instead;
* ``gradient_accumulation_count`` -> Keras optimiser gradient accumulation;
* ``precision`` -> a Keras dtype policy (:mod:`effnet_lib.common.precision`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from ..common.precision import PRECISIONS
from ..models.spec import EfficientNetSpec, as_spec, closest, validate_splits

DEFAULT_CONFIG_PATH = Path(__file__).with_name("configs.yml")
RESOLUTIONS = ("native", "half")
LR_SCHEDULES = ("exponential", "cosine", "constant")
WEIGHT_DECAY_MODES = ("coupled", "decoupled")
CUTMIX_VERSIONS = (1, 2)


def setting(default=dataclasses.MISSING, help: str = "", **cli):
    """A case field with its meaning; ``cli`` holds command-line hints (``flag``, ``choices``)."""
    return field(default=default, metadata=dict(help=help, **cli))


@dataclass(frozen=True)
class CaseConfig:
    """One training case. ``load_case`` fills it from ``configs.yml``."""

    name: str = setting(help="the case's name", cli=False)
    model: str = setting(help="model name, e.g. B0-G16-LN_PN")
    resolution: str = setting(help="native or half (the paper's two training sizes)",
                              choices=RESOLUTIONS)
    image_size: int = setting(help="training image size in pixels")
    micro_batch_size: int = setting(help="images per replica per micro-step",
                                    flag="--batch-size")
    replicas: int = setting(help="data-parallel replicas; those the machine lacks fold into "
                                 "gradient accumulation")
    pipeline_stages: int = setting(help="IPUs a replica's model is split over (kept as data)")
    gradient_accumulation_count: int = setting(help="micro-steps per weight update")
    pipeline_splits: tuple[str, ...] = setting((), "block names that start a pipeline stage")
    mixup_alpha: float = setting(0.0, "Mixup's Beta(alpha, alpha); 0 turns it off")
    cutmix_lambda: float | None = setting(None, "CutMix's setting; none turns it off (version 1: "
                                                "sets the chance of no cut; version 2: the share "
                                                "kept)")
    cutmix_version: int = setting(1, "1: a random share per micro-batch, as the reference ran; "
                                     "2: a fixed share", choices=CUTMIX_VERSIONS)
    optimiser: str = setting("RMSprop", "the optimiser (the paper's: RMSprop)",
                             choices=("RMSprop",))
    base_learning_rate_exponent: float = setting(-14, "peak lr = 2^exponent x global batch")
    rmsprop_base_decay_exponent: float = setting(-14, "RMSprop rho = 1 - 2^exponent x global "
                                                      "batch")
    rmsprop_epsilon: float = setting(1e-3, "RMSprop's epsilon")
    momentum: float = setting(0.9, "RMSprop's momentum")
    epochs: float = setting(350, "epochs to train")
    warmup_epochs: float = setting(5, "linear learning-rate warm-up, in epochs")
    lr_schedule: str = setting("exponential", "learning-rate schedule after the warm-up",
                               choices=LR_SCHEDULES)
    lr_decay_rate: float = setting(0.97, "exponential schedule: factor per decay interval")
    lr_drops: float = setting(146, "exponential schedule: drops over the run (interval = "
                                   "epochs / lr_drops, so a shortened run keeps the shape)")
    lr_decay_epochs: float | None = setting(None, "exponential schedule: a fixed decay interval "
                                                  "in epochs instead of epochs / lr_drops")
    label_smoothing: float = setting(0.1, "share of the label spread over the other classes")
    weight_decay: float = setting(1e-5, "weight decay (not on norm beta/gamma)")
    weight_decay_mode: str = setting("coupled", "coupled: wd*w added to the gradient before "
                                                "RMSprop (the reference's); decoupled: Keras's "
                                                "w -= lr*wd*w", choices=WEIGHT_DECAY_MODES)
    loss_scaling: float = setting(128, "static loss scale for float16 compute")
    precision: str = setting("16.32", "compute.weights bits", choices=tuple(PRECISIONS))
    weight_avg_exp: float = setting(0.97, "decay of the exponential weight average over "
                                          "checkpoints")
    weight_avg_n: int = setting(0, "also average the checkpoints of the last N epochs "
                                   "(the reference's --weight-avg-N); 0: off")
    norm_epsilon: float = setting(1e-3, "epsilon of BN/GN/LN")
    gn_groups: int = setting(4, "GroupNorm's groups")
    proxy_epsilon: float = setting(0.03, "Proxy Norm's epsilon")
    crop_area_range: tuple[float, float] = setting((0.05, 1.0), "the training crop's share of "
                                                                "the image area (low high)")

    def __post_init__(self):
        object.__setattr__(self, "pipeline_splits", tuple(self.pipeline_splits or ()))
        object.__setattr__(self, "crop_area_range", tuple(self.crop_area_range))
        positive_ints = ("image_size", "micro_batch_size", "replicas", "pipeline_stages",
                         "gradient_accumulation_count", "gn_groups")
        self._check_choice("weight_decay_mode", WEIGHT_DECAY_MODES)
        self._check_choice("cutmix_version", CUTMIX_VERSIONS)
        for name in positive_ints:
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"Case {self.name!r}: {name}={value!r} is not valid: "
                                 f"it must be an integer >= 1.")
        self._check_choice("precision", tuple(PRECISIONS))
        self._check_choice("resolution", RESOLUTIONS)
        for name in ("epochs", "label_smoothing", "weight_decay", "mixup_alpha", "warmup_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"Case {self.name!r}: {name}={getattr(self, name)!r} must be >= 0.")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"Case {self.name!r}: label_smoothing must be in [0, 1).")
        if not (self.lr_drops > 0 and (self.lr_decay_epochs is None or self.lr_decay_epochs > 0)):
            raise ValueError(f"Case {self.name!r}: lr_drops and lr_decay_epochs must be > 0.")
        if self.cutmix_lambda is not None and not 0 < self.cutmix_lambda <= 1:
            raise ValueError(f"Case {self.name!r}: cutmix_lambda={self.cutmix_lambda!r} must be in "
                             f"(0, 1], or none to turn CutMix off.")
        if not (isinstance(self.weight_avg_n, int) and self.weight_avg_n >= 0):
            raise ValueError(f"Case {self.name!r}: weight_avg_n={self.weight_avg_n!r} must be an "
                             f"integer >= 0.")
        spec = self.model_spec()  # validates the model name and the spec fields
        if len(self.pipeline_splits) != self.pipeline_stages - 1:
            raise ValueError(f"Case {self.name!r}: {self.pipeline_stages} pipeline stages need "
                             f"{self.pipeline_stages - 1} pipeline_splits, got "
                             f"{list(self.pipeline_splits)}.")
        validate_splits(spec, self.pipeline_splits)

    def _check_choice(self, name: str, accepted) -> None:
        if getattr(self, name) not in accepted:
            raise ValueError(f"Case {self.name!r}: {name}={getattr(self, name)!r} is not valid: "
                             f"accepted {', '.join(map(str, accepted))}.")

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

    def decay_interval(self, epochs: float | None = None) -> float:
        """Epochs between two learning-rate drops of a run of ``epochs`` (default: the case's)."""
        if self.lr_decay_epochs is not None:
            return self.lr_decay_epochs
        return (self.epochs if epochs is None else epochs) / self.lr_drops

    def model_spec(self, **overrides) -> EfficientNetSpec:
        fields = dict(resolution=self.image_size, norm_epsilon=self.norm_epsilon,
                      gn_groups=self.gn_groups, proxy_epsilon=self.proxy_epsilon)
        fields.update(overrides)
        return EfficientNetSpec.from_name(self.model, **fields)

    def replace(self, **overrides) -> "CaseConfig":
        check_fields(overrides, self.name)
        return dataclasses.replace(self, **overrides)


def resolve_spec(spec_or_name, **overrides) -> EfficientNetSpec:
    """An :class:`EfficientNetSpec` from a spec, a model name (``B0-G16-LN_PN``) or a case name."""
    if isinstance(spec_or_name, str):
        looks_like_case = any(k in spec_or_name.lower() for k in ("native", "half", "ipu"))
        if spec_or_name in case_names() or looks_like_case:  # load_case names the closest cases
            return load_case(spec_or_name).model_spec().replace(**overrides)
    return as_spec(spec_or_name, **overrides)


@lru_cache(maxsize=8)
def read_configs(path: str) -> dict:
    """The YAML file of cases (safely loaded, cached): ``defaults`` and ``cases``."""
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
    return list(read_configs(str(path or DEFAULT_CONFIG_PATH))["cases"])


def load_case(name: str, path: str | Path | None = None, **overrides) -> CaseConfig:
    """A case from ``configs.yml`` (or ``path``), with keyword overrides."""
    data = read_configs(str(path or DEFAULT_CONFIG_PATH))
    cases = data["cases"]
    if name not in cases:
        hint = closest(name, cases)
        raise ValueError(f"Unknown case {name!r}." + (f" Did you mean {', '.join(hint)}?" if hint
                                                       else "") + " `effnet cases` lists them all.")
    fields = {**(data.get("defaults") or {}), **cases[name], **overrides}
    check_fields(fields, name)
    return CaseConfig(name=name, **fields)


def load_cases(path: str | Path | None = None) -> list[CaseConfig]:
    return [load_case(name, path) for name in case_names(path)]


def recipe_case(model: str, path: str | Path | None = None) -> str:
    """The case whose recipe trains ``model`` when no case is named: the model's own case at
    native resolution, else a native case of its size and group size, else of its size."""
    size, group = model.split("-")[:2]
    native = [c for c in load_cases(path) if c.resolution == "native"]
    for match in (lambda c: c.model == model, lambda c: c.model.split("-")[:2] == [size, group],
                  lambda c: c.model.split("-")[0] == size):
        found = [c.name for c in native if match(c)]
        if found:
            return found[0]
    raise ValueError(f"no case trains a {size} model; name the recipe to use with --config CASE "
                     f"(`effnet cases` lists them).")


def check_fields(fields: dict, case: str) -> None:
    """Every key of ``fields`` must be a case setting; the error suggests the nearest ones."""
    valid = {f.name for f in dataclasses.fields(CaseConfig)} - {"name"}
    unknown = sorted(set(fields) - valid)
    if unknown:
        hints = {u: closest(u, valid, n=1) for u in unknown}
        detail = ", ".join(f"{u!r}" + (f" (did you mean {h[0]!r}?)" if h else "")
                           for u, h in hints.items())
        raise ValueError(f"Case {case!r}: unknown setting(s) {detail}. Valid settings: "
                         f"{', '.join(sorted(valid))}.")
