"""Run one measurement in a fresh Python process and read its JSON answer.

Memory peaks and timings are only comparable when each measurement starts from
the same state: a new interpreter, with nothing compiled or allocated by an
earlier one. :func:`run_in_fresh_process` starts ``python -m
effnet_lib.common.fresh_process TARGET REQUEST``; this module, as ``__main__``,
imports ``TARGET`` (``"effnet_lib.module:function"``, inside the kit only), calls
it with the request and prints its JSON answer as the last line.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

PACKAGE = "effnet_lib."


def run_in_fresh_process(target: str, request: dict, timeout: float = 900,
                         backend: str | None = None, env: dict | None = None) -> dict:
    """``target(request)`` in a new interpreter; its returned dict."""
    _check_target(target)
    child_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    if backend:
        child_env["KERAS_BACKEND"] = backend
    child_env.setdefault("KERAS_BACKEND", "tensorflow")
    done = subprocess.run([sys.executable, "-m", __name__, target, json.dumps(request)],
                          capture_output=True, text=True, env=child_env, timeout=timeout)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the measuring process ({target}) failed with exit code "
                           f"{done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def _check_target(target: str) -> None:
    module, _, function = target.partition(":")
    if not (module.startswith(PACKAGE) and function.isidentifier()):
        raise ValueError(f"target={target!r}: expected 'effnet_lib.module:function'.")


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far."""
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # Linux reports KiB, macOS bytes
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def rss_bytes() -> int:
    """This process's resident memory now (ru_maxrss would only give the peak so far)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(argv) -> None:
    target, request = argv
    _check_target(target)
    module, _, function = target.partition(":")
    answer = getattr(importlib.import_module(module), function)(json.loads(request))
    print(json.dumps(answer))


if __name__ == "__main__":
    main(sys.argv[1:])
