"""What every command group shares: printing tables, parsing lists, quieting the backend."""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.util
import os
import sys

EPILOG = """Names: a model is B{0-7}-G{group size}-{BN|GN|LN|GN_PN|LN_PN} (e.g. B0-G16-LN_PN);
a case is one of the paper's 30 training configurations (`effnet cases` lists them)."""

DATA_SOURCES = """Sources: shapes (the embedded default, generated on first use), shapes:PATH,
folder:PATH (PATH/{train,validation}/<class>/*.jpg|png), imagenet:PATH (TFRecord shards
train-00000-of-01024 ...), tfds:NAME, synthetic-host, synthetic-device."""


# One spelling of precision and of XLA for every command.
PRECISION_HELP = ("compute.storage bits as the paper names them: 32.32, 16.32, 16.16 or bf16 "
                  "(32 and 16 are short for 32.32 and 16.32)")
XLA_HELP = ("compile with XLA: on, off, or auto (Keras's choice: on for accelerators, off for "
            "TensorFlow on CPUs)")


def add_precision(parser, default, what: str) -> None:
    from ..common.precision import PRECISION_NAMES

    parser.add_argument("--precision", choices=PRECISION_NAMES, default=default,
                        metavar="PRECISION", help=f"{what}; {PRECISION_HELP}")


def add_xla(parser, default: str) -> None:
    from ..bench.timing import XLA

    parser.add_argument("--xla", choices=tuple(XLA), default=default, help=XLA_HELP)


def xla_list(text: str) -> list[str]:
    """Several XLA settings, comma-separated, each one of --xla's."""
    from ..bench.timing import XLA

    values = [part.strip() for part in str(text).split(",") if part.strip()]
    bad = [v for v in values if v not in XLA]
    if bad or not values:
        raise argparse.ArgumentTypeError(f"{text!r}: expected settings of {', '.join(XLA)} "
                                         f"separated by commas, e.g. off,on")
    return values


EXAMPLES = {
    "cases": ["effnet cases", "effnet cases --format csv > cases.csv"],
    "model": ["effnet model B0-G16-LN_PN", "effnet model B1-G16-GN-Half_16IPU_4x4 --format csv"],
    "profile": ["effnet profile B0-G16-LN_PN --by block",
                "effnet profile B0-G16-LN_PN-Native_16IPU_2x8 --stages"],
    "memory": ["effnet memory B0-G1-GN --image-size 128 --batch-sizes 8,32"],
    "data": ["effnet data make-shapes --output-dir data/shapes --train 2000 --val 400",
             "effnet data show folder:data/shapes --mixup-alpha 0.2"],
    "data make-shapes": ["effnet data make-shapes --output-dir data/shapes",
                         "effnet data make-shapes --output-dir data/small --image-size 64 --train 800 --val 200"],
    "data show": ["effnet data show", "effnet data show folder:data/shapes --cutmix-lambda 0.5"],
    "data build-tfrecords": ["effnet data build-tfrecords data/shapes data/shapes-tfrecords"],
    "data bench": ["effnet data bench", "effnet data bench imagenet:/data/imagenet --cache"],
    "train": ["effnet train B0-G16-LN_PN-Half_16IPU_2x8 --dry-run",
              "effnet train B0-G16-GN-Native_16IPU_2x8 --data folder:data/shapes --epochs 10",
              "effnet train B0-G1-BN --image-size 64 --batch-size 32 --epochs 3 --width-coefficient 0.5"],
    "validate": ["effnet validate --checkpoint runs/B0-G16-GN-Native_16IPU_2x8",
                 "effnet validate --checkpoint runs/X/average --image-sizes 128,160,224 --output fixres.csv"],
    "finetune": ["effnet finetune --checkpoint runs/X/average --image-size 224",
                 "effnet finetune --checkpoint runs/X --image-size 224 --reestimate-bn-statistics --epochs 0"],
    "export": ["effnet export runs/B0-G16-GN-Native_16IPU_2x8 --output-dir exported/g16gn",
               "effnet export B0-G1-BN --output-dir /tmp/b0 --no-rewrite"],
    "predict": ["effnet predict photo.jpg --model exported/g16gn",
                "effnet predict data/shapes/validation --model runs/X --top 3"],
    "benchmark": ["effnet benchmark B0-G1-BN --mode infer",
                  "effnet benchmark B0-G16-LN_PN --image-size 112 --precision 16.32 --reference none",
                  "effnet benchmark --exported exported/g16gn --reference keras"],
    "benchmark-groups": ["effnet benchmark-groups", "effnet benchmark-groups --backends tensorflow,jax --xla off"],
    "tables": ["effnet tables", "effnet tables --output-dir /tmp/tables"],
    "reproduce": ["effnet reproduce", "effnet reproduce --budget smoke --notebooks 01,05 --output-dir /tmp/f"],
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; every option's help ends with its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (action.option_strings and default not in (None, False, argparse.SUPPRESS)
                and "default" not in text and not isinstance(action, argparse._VersionAction)):
            shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
            text += f" (default: {shown})"
        return text


def finish(parser, path: str = "") -> None:
    """Give every command (sub-commands included) the help formatter and its examples."""
    parser.formatter_class = HelpFormatter
    if path in EXAMPLES:
        examples = "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[path])
        parser.epilog = f"{parser.epilog}\n\n{examples}" if parser.epilog else examples
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                finish(child, f"{path} {name}".strip())


class CommaList(argparse.Action):
    """A list option: ``a,b,c`` (the kit's list syntax), also ``a b c`` or ``a,b c``."""

    def __call__(self, parser, namespace, values, option_string=None):
        values = [values] if isinstance(values, str) else values
        setattr(namespace, self.dest, [part for value in values for part in value.split(",") if part])


def frame(rows):
    import pandas as pd

    return pd.DataFrame(rows)


def print_table(table, fmt: str) -> None:
    if fmt == "csv":
        print(table.to_csv(index=False), end="")
    else:
        print(table.to_string(index=False))


def int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{flag} {text!r}: expected integers separated by commas, e.g. 8,32.") from None


def boolean(text):
    lowered = str(text).lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r}: expected true or false")


def quiet_backend():
    # TensorFlow's start-up banners bury the answer of a short command.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules and not any(isinstance(f, QuietTensorFlowImport)
                                                   for f in sys.meta_path):
        sys.meta_path.insert(0, QuietTensorFlowImport())


class QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Loads TensorFlow, when a command first needs it, with the process's standard error
    pointed at /dev/null: its C++ libraries print notices while they load (oneDNN's "custom
    operations are on", absl's "log messages before InitializeLog"), before any logging
    setting applies. Errors still raise; ``effnet --verbose`` keeps the notices."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once; the real finders do the finding
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _SilentLoader(spec.loader)
        return spec


class _SilentLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):  # resource readers and the like: the real loader's
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        try:
            self.loader.exec_module(module)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
