"""Alternating timed runs of implementations that each run in a process of their own.

This kit's model and timm's cannot share a process fairly: with both loaded and this
kit's TensorFlow steps running, timm's steps took 2.06 s against 1.3-1.8 s in a process
of their own (B0 at 224 px, batch 16, 2 cores, 2026-12-07), while this kit's were
unchanged, which biased the paired ratio towards this kit (1.56x where separate processes
gave 0.93x). Here each implementation builds its step in its own process (``python -m
effnet_lib.bench.steps REQUEST``, which calls :func:`serve`), then waits on its standard
input; the parent gives each a turn in order (A B A B ...), so the machine's drift still
hits both alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

GO = "go"


WORKER = "effnet_lib.bench.steps"


def alternate_in_processes(requests: dict, repeats: int, steps: int) -> dict:
    """Seconds per step of each named request's timed runs, the runs taking turns."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    # Standard error to a file, not a pipe: a worker that logs more than a pipe holds while
    # the parent waits on its standard output would block for ever.
    logs = {name: tempfile.TemporaryFile("w+") for name in requests}
    workers = {name: subprocess.Popen([sys.executable, "-m", WORKER, json.dumps(request)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=logs[name], text=True, env=env)
               for name, request in requests.items()}
    try:
        for name, worker in workers.items():
            _answer(name, worker, logs[name])  # "ready": built and warmed up
        times = {name: [] for name in workers}
        for _ in range(repeats):
            for name, worker in workers.items():
                worker.stdin.write(f"{GO} {steps}\n")
                worker.stdin.flush()
                times[name] += _answer(name, worker, logs[name])
        return times
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                worker.stdin.close()
                try:
                    worker.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    worker.kill()
        for log in logs.values():
            log.close()


def _answer(name: str, worker, log) -> list:
    line = worker.stdout.readline()
    if not line:
        worker.wait(timeout=60)
        log.seek(0)
        raise RuntimeError(f"the measuring process for {name} failed with exit code "
                           f"{worker.returncode}:\n{log.read()[-3000:]}")
    return json.loads(line)


def serve(step, warmup: int) -> None:
    """The worker's side: warm ``step`` up, say so, then time a run of it on every turn."""
    from .timing import time_steps

    for _ in range(max(warmup, 1)):
        step()
    print(json.dumps([]), flush=True)
    for line in sys.stdin:
        word, count = line.split()
        if word != GO:
            raise ValueError(f"unexpected turn {line!r}")
        print(json.dumps(time_steps(step, 0, 1, int(count))), flush=True)
