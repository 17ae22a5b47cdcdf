"""``python -m effnet_lib.cli``: the same as the ``effnet`` command."""

import sys

from . import main

sys.exit(main())
