"""What every command group shares: printing tables, parsing lists, quieting the backend."""

from __future__ import annotations

import argparse
import os

EPILOG = """Names: a model is B{0-7}-G{group size}-{BN|GN|LN|GN_PN|LN_PN} (e.g. B0-G16-LN_PN);
a case is one of the paper's 30 training configurations (`effnet cases` lists them)."""

DATA_SOURCES = """Sources: shapes (the embedded default, generated on first use), shapes:PATH,
folder:PATH (PATH/{train,validation}/<class>/*.jpg|png), imagenet:PATH (TFRecord shards
train-00000-of-01024 ...), tfds:NAME, synthetic-host, synthetic-device."""


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
