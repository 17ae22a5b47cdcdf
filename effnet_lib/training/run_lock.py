"""One training process per run folder: a lock file that names its owner.

Two ``effnet train`` runs into one folder used to destroy each other (the second one's
clean-up of partial checkpoints deleted the checkpoint the first was writing). The first
run now holds ``run.lock`` (its process id, host and start time); a second run stops with an
error naming that process. A lock left by a killed run (its process is gone) is taken over
with a warning. Only the chief of a multi-worker run takes it; the other workers write
nothing there.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path

LOCK = "run.lock"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _owner(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # unreadable: half-written by a process killed at that instant


@contextmanager
def run_folder_lock(run_dir, enabled: bool = True, say=print):
    """Hold ``run_dir/run.lock`` while the block runs (when ``enabled``)."""
    if not enabled:
        yield
        return
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"cannot create the run folder {run_dir}: {error.strerror or error}. "
                         f"Pick another --checkpoint-dir.") from None
    path = run_dir / LOCK
    me = dict(pid=os.getpid(), host=socket.gethostname(),
              started=datetime.datetime.now().isoformat(timespec="seconds"))
    while True:
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            other = _owner(path)
            if other.get("host") not in (None, me["host"]):
                raise ValueError(f"{run_dir} is in use by process {other.get('pid')} on "
                                 f"{other['host']} (since {other.get('started')}). If that run is "
                                 f"gone, delete {path}; or pick another --checkpoint-dir.") from None
            if other.get("pid") and process_alive(int(other["pid"])) and other["pid"] != me["pid"]:
                raise ValueError(f"{run_dir} is in use by process {other['pid']} (since "
                                 f"{other.get('started')}): two runs in one folder would overwrite "
                                 f"each other's checkpoints. Wait for it, stop it, or pick another "
                                 f"--checkpoint-dir.") from None
            say(f"warning: {path} was left by process {other.get('pid', '?')}, which is no longer "
                f"running: taking it over.")
            path.unlink(missing_ok=True)
            continue
        except OSError as error:
            raise ValueError(f"cannot write in the run folder {run_dir}: "
                             f"{error.strerror or error}. Pick another --checkpoint-dir.") from None
        with os.fdopen(descriptor, "w") as stream:
            stream.write(json.dumps(me))
        break
    try:
        yield
    finally:
        if _owner(path).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)
