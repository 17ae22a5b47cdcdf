"""The ``effnet`` command line: one module per command group.

* :mod:`.models`: ``cases``, ``model``, ``profile``, ``memory``;
* :mod:`.data`: ``data make-shapes|show|build-tfrecords|bench``;
* :mod:`.training`: ``train``, ``validate``, ``finetune`` (a case's options come
  from its fields);
* :mod:`.inference`: ``export``, ``predict``;
* :mod:`.bench`: ``benchmark``, ``benchmark-groups``;
* :mod:`.lessons`: ``tables``, ``reproduce``.
"""

from __future__ import annotations

import argparse
import sys

from . import bench, data, inference, lessons, models, training
from .common import EPILOG, finish, quiet_backend

GROUPS = (models, data, training, inference, bench, lessons)


def kit_version() -> str:
    """The installed distribution's version (``make`` installs the kit, editable)."""
    import importlib.metadata

    try:
        return importlib.metadata.version("effnet-kit")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed: run `make install`)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="effnet", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="EfficientNet with group convolutions, batch-independent normalisation and "
                    "reduced-resolution training (Masters et al., 2021) on TensorFlow 2 + Keras 3.")
    parser.add_argument("--version", action="version", version=f"effnet-kit {kit_version()}")
    parser.add_argument("--verbose", action="store_true",
                        help="keep TensorFlow's start-up messages (hidden by default)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.add_commands(sub)
    finish(parser)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verbose:
        quiet_backend()  # before any command imports TensorFlow
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as error:
        print(f"effnet {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if not type(error).__module__.startswith("tensorflow"):
            raise
        # Errors from inside tf.data come wrapped in TensorFlow's op context.
        from ..data.pipeline import readable_input_error

        print(f"effnet {args.command}: error: {readable_input_error(error)}", file=sys.stderr)
        return 1
