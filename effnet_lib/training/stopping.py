"""Stopping a run gracefully: SIGTERM (a notebook server or a scheduler shutting down) or
Ctrl-C (SIGINT; a notebook's *interrupt*) asks the run to stop.

The run finishes the device loop it is in (control returns to the host only at the end
of a log, as on an IPU), writes a checkpoint there, says where, and ends with
:attr:`StopRequest.reason` set; the same command resumes. A second signal stops at once.
Handlers are installed only in the main thread (Python allows no other) and restored
when the run ends.
"""

from __future__ import annotations

import contextlib
import signal
import threading

import keras

SIGNALS = ("SIGTERM", "SIGINT")


class StopRequest(keras.callbacks.Callback):
    """Set by a signal; stops ``fit`` at the end of the current log (``reason`` says why)."""

    def __init__(self, say=print):
        super().__init__()
        self.reason: str | None = None
        self.say = say

    def request(self, name: str) -> None:
        self.reason = name
        if self.model is not None:
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        if self.reason:
            self.model.stop_training = True


@contextlib.contextmanager
def stop_on_signals(request: StopRequest, enabled: bool = True):
    """Route SIGTERM and SIGINT to ``request`` while the block runs."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {name: signal.getsignal(getattr(signal, name)) for name in SIGNALS}

    def handle(number, frame):
        name = signal.Signals(number).name
        if request.reason:  # the second one: stop now
            restore()
            raise KeyboardInterrupt(f"{name} again: stopped without a checkpoint")
        request.say(f"{name}: finishing the current log, then writing a checkpoint "
                    f"(send it again to stop at once).")
        request.request(name)

    def restore():
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)

    for name in SIGNALS:
        signal.signal(getattr(signal, name), handle)
    try:
        yield request
    finally:
        restore()
