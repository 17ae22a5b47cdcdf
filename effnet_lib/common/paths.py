"""Where the kit keeps what it generates or learns about this machine.

One folder, ``$EFFNET_DATA_DIR`` (default ``~/.cache/effnet-kit``): the embedded
shapes data sets, the lessons' smaller sets and the user's own measured
``conv_impl`` choices. Nothing else in the kit reads the variable.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_VARIABLE = "EFFNET_DATA_DIR"


def data_dir() -> Path:
    """``$EFFNET_DATA_DIR``, else ``~/.cache/effnet-kit``."""
    return Path(os.environ.get(DATA_DIR_VARIABLE) or Path.home() / ".cache" / "effnet-kit")
