"""Run one measurement in a fresh Python process and read its JSON answer.

Memory peaks and timings are only comparable when each measurement starts from
the same state: a new interpreter, with nothing compiled or allocated by an
earlier one. A measuring module gives itself a ``__main__`` that reads one JSON
request from ``argv[1]`` and prints one JSON answer as its last line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def measure_in_fresh_process(module: str, request: dict, timeout: float = 900,
                             backend: str | None = None, env: dict | None = None) -> dict:
    """Run ``python -m module '<request as JSON>'`` and return its last line, parsed."""
    child_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    if backend:
        child_env["KERAS_BACKEND"] = backend
    child_env.setdefault("KERAS_BACKEND", "tensorflow")
    done = subprocess.run([sys.executable, "-m", module, json.dumps(request)],
                          capture_output=True, text=True, env=child_env, timeout=timeout)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the measuring process ({module}) failed with exit code "
                           f"{done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far."""
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # Linux reports KiB, macOS bytes
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def rss_bytes() -> int:
    """This process's resident memory now (ru_maxrss would only give the peak so far)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
