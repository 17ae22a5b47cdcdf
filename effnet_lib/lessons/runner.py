"""Run the lessons in ``notebooks/`` headless with papermill (``effnet reproduce``).

Each ``notebooks/NN_*.ipynb`` is executed top to bottom in a fresh kernel with the
parameters ``budget``, ``data``, ``output_dir`` and ``seed`` injected after its
``parameters`` cell, its working directory set to ``notebooks/``. The executed
copy (with outputs) goes to ``build_dir`` and, when the notebook ran, to
``output_dir/notebooks/`` beside what it wrote, for readers who do not run it; the
committed sources are never written. A failing notebook does not stop the others: the
run goes on and the result names the notebook and the cell that failed.

A run has an id (``$EFFNET_RUN_ID`` in every kernel), which every record carries, so
that a notebook that gathers others' records (06) reads only this run's. Such a
notebook names them in its metadata (``"effnet": {"after": ["02", "03"]}``) and runs
after them, whatever ``jobs`` is. A notebook that times something says
``"effnet": {"alone": true}`` and runs with no other notebook beside it (another kernel
on the same cores would slow what it times), whatever ``jobs`` is. Within a wave the
longest notebook starts first (by the duration papermill recorded in the copy that the
last run of the same budget published), so that with ``jobs`` > 1 the short ones fill in
beside it instead of leaving it to run last on its own.

The kernel is ``python3`` as seen from the interpreter running this code:
jupyter_client starts a kernel spec whose command is ``python`` with
``sys.executable``, so inside the kit's virtual environment the notebooks run on
that environment's Python (the tests check it).
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .records import RUN_ID_VARIABLE, check_budget

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_.+\.ipynb$")
PUBLISHED = "notebooks"  # executed copies, under output_dir
KERNEL_NAME = "python3"
PATH_SOURCES = ("shapes", "folder", "imagenet")
# The longest a cell may take, in seconds, by budget (None: no limit). Without a limit,
# nbclient waits for a cell's reply on a socket poll with no timeout, and with ipywidgets'
# messages around it can miss the wake-up of a reply already received and wait forever
# (jupyter/nbclient#312, open; seen once here: lesson 05's widget cell, its kernel idle, the
# client waiting). With a limit, pyzmq looks at the socket once more when the limit passes
# and takes the reply there, so a missed wake-up costs at most the limit; a cell that really
# runs longer fails with papermill's timeout error naming it. The limits are far above the
# longest cells measured (smoke: under 2 minutes; quick: a few minutes).
CELL_TIMEOUT = {"smoke": 300, "quick": 3600, "full": None}


@dataclass
class NotebookRun:
    """What happened to one notebook."""

    name: str           # the notebook's stem, e.g. "03_proxy_norm"
    output: str         # the executed copy
    seconds: float
    error: dict | None = None   # cell, exception, message when it failed

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        if self.ok:
            return f"{self.name}: ok in {self.seconds:.1f} s"
        e = self.error
        where = "before any cell ran"
        if e.get("cell") is not None:
            # Cells counted in the executed copy (papermill inserts the injected
            # parameters after the parameters cell), with the cell's first line.
            where = f"cell {e['cell']} (In [{e.get('execution_count')}]: {e.get('source', '')!r})"
        return (f"{self.name}: FAILED at {where} after {self.seconds:.1f} s: "
                f"{e['exception']}: {e['message']} (executed copy: {self.output}; "
                f"kernel log: {kernel_log(self.output)})")


@dataclass
class RunResult:
    runs: list[NotebookRun]

    @property
    def ok(self) -> bool:
        return all(run.ok for run in self.runs)

    @property
    def failed(self) -> list[NotebookRun]:
        return [run for run in self.runs if not run.ok]


def find_notebooks(notebooks_dir=NOTEBOOKS_DIR) -> dict[str, Path]:
    """``{"01": path, ...}``: the numbered lessons in ``notebooks_dir``, in order."""
    found = {}
    for path in sorted(Path(notebooks_dir).glob("*.ipynb")):
        match = NOTEBOOK_PATTERN.match(path.name)
        if match:
            if match.group(1) in found:
                raise ValueError(f"two notebooks numbered {match.group(1)} in {notebooks_dir}: "
                                 f"{found[match.group(1)].name} and {path.name}.")
            found[match.group(1)] = path
    return found


def select(notebooks=None, notebooks_dir=NOTEBOOKS_DIR) -> list[Path]:
    """The notebooks to run: all, or those numbered in ``notebooks`` ("02" or 2)."""
    available = find_notebooks(notebooks_dir)
    if not available:
        raise FileNotFoundError(f"no notebooks named NN_*.ipynb in {notebooks_dir}.")
    if notebooks is None:
        return list(available.values())
    if isinstance(notebooks, str):
        notebooks = [n for n in notebooks.split(",") if n.strip()]
    chosen = []
    for number in notebooks:
        key = f"{int(number):02d}" if str(number).strip().isdigit() else str(number).strip()
        if key not in available:
            listing = ", ".join(f"{n} ({p.stem})" for n, p in available.items())
            raise ValueError(f"no notebook numbered {number!r}; valid numbers: {listing}.")
        if available[key] not in chosen:
            chosen.append(available[key])
    return chosen


def absolute_data(data: str) -> str:
    """``folder:rel/path`` -> ``folder:/abs/path``: the kernel runs in ``notebooks/``."""
    kind, sep, argument = data.partition(":")
    if sep and kind in PATH_SOURCES and argument and not os.path.isabs(os.path.expanduser(argument)):
        return f"{kind}:{Path(argument).expanduser().absolute()}"
    return data


def run_notebooks(budget: str = "quick", notebooks=None, jobs: int = 1, output_dir="figures",
                  build_dir="build/notebooks", data: str = "shapes", seed: int = 0,
                  notebooks_dir=NOTEBOOKS_DIR, progress: bool = True, say=print) -> RunResult:
    """Execute the notebooks with papermill; return which ran and which failed where.

    Args:
        budget: ``smoke`` (seconds each, for the tests), ``quick`` (minutes,
            ``make reproduce``) or ``full`` (hours).
        notebooks: numbers to run (``["02", "04"]`` or ``"02,04"``); default all.
        jobs: notebooks run at the same time, each in its own process and kernel.
        output_dir: where the notebooks save figures, tables and records (passed
            to them as an absolute path).
        build_dir: where the executed copies go.
        data: the ``data`` parameter (``shapes``, ``folder:PATH`` ...); relative
            paths are made absolute.
        notebooks_dir: the folder of lessons (default: the kit's ``notebooks/``).
    """
    check_budget(budget)
    if not (isinstance(jobs, int) and jobs >= 1):
        raise ValueError(f"jobs={jobs!r}: it must be an integer >= 1.")
    paths = select(notebooks, notebooks_dir)
    output_dir = Path(output_dir).expanduser().absolute()
    build_dir = Path(build_dir).expanduser().absolute()
    output_dir.mkdir(parents=True, exist_ok=True)
    build_dir.mkdir(parents=True, exist_ok=True)
    parameters = dict(budget=budget, data=absolute_data(data), output_dir=str(output_dir),
                      seed=int(seed))
    tasks = [(str(path), str(build_dir / path.name), parameters) for path in paths]
    for source, target, _ in tasks:
        if Path(source).resolve() == Path(target).resolve():
            raise ValueError(f"build_dir {build_dir} is the notebooks' own folder: the executed "
                             f"copies would overwrite the sources.")

    started = time.perf_counter()
    run_id = f"{datetime.datetime.now().strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    previous, os.environ[RUN_ID_VARIABLE] = os.environ.get(RUN_ID_VARIABLE), run_id
    try:
        runs = []
        for wave in waves(tasks):  # a notebook that reads others' records runs after them
            wave = longest_first(wave, output_dir / PUBLISHED, budget)
            runs += _execute_all(wave, jobs, f"notebooks ({budget})", progress)
    finally:
        if previous is None:
            os.environ.pop(RUN_ID_VARIABLE, None)
        else:
            os.environ[RUN_ID_VARIABLE] = previous
    order = [Path(source).stem for source, _, _ in tasks]
    result = RunResult(sorted(runs, key=lambda run: order.index(run.name)))
    publish(result, output_dir)
    elapsed = time.perf_counter() - started
    say(f"{len(result.runs) - len(result.failed)} of {len(result.runs)} notebooks ran in "
        f"{elapsed:.0f} s; executed copies in {build_dir}, results in {output_dir}.")
    for run in result.failed:
        say(run.describe())
    return result


def publish(result: RunResult, output_dir: Path) -> None:
    """Readable without running: each executed copy beside what it wrote."""
    for run in result.runs:
        if run.ok:
            target = output_dir / PUBLISHED / Path(run.output).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run.output, target)


def run_metadata(path) -> dict:
    """A notebook's ``effnet`` metadata: how the runner schedules it."""
    return json.loads(Path(path).read_text()).get("metadata", {}).get("effnet", {})


def runs_after(path) -> list[str]:
    """The numbers of the notebooks whose records ``path`` reads (its ``effnet.after``)."""
    return [str(n) for n in run_metadata(path).get("after", [])]


def runs_alone(path) -> bool:
    """Whether ``path`` must run with no other notebook beside it (its ``effnet.alone``)."""
    return bool(run_metadata(path).get("alone", False))


def waves(tasks) -> list[list]:
    """Tasks in waves: each notebook after the notebooks it names (among those run), and a
    notebook that runs alone in a wave of its own, before the others of its wave."""
    def number(task) -> str:
        return NOTEBOOK_PATTERN.match(Path(task[0]).name).group(1)

    running = {number(t) for t in tasks}
    pending, done, result = list(tasks), set(), []
    while pending:
        ready = [t for t in pending
                 if all(n in done or n not in running for n in runs_after(t[0]))]
        if not ready:
            raise ValueError("notebooks name each other in 'effnet.after': "
                             + ", ".join(Path(t[0]).name for t in pending))
        alone = [t for t in ready if runs_alone(t[0])]
        result += [[t] for t in alone]
        if len(ready) > len(alone):
            result.append([t for t in ready if t not in alone])
        done |= {number(t) for t in ready}
        pending = [t for t in pending if t not in ready]
    return result


def last_duration(published: Path, budget: str) -> float | None:
    """Seconds the published executed copy ``published`` took, if it ran at ``budget``."""
    try:
        papermill = json.loads(Path(published).read_text())["metadata"]["papermill"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if papermill.get("parameters", {}).get("budget") != budget:
        return None
    duration = papermill.get("duration")
    return float(duration) if isinstance(duration, (int, float)) else None


def longest_first(tasks, published_dir: Path, budget: str) -> list:
    """``tasks`` ordered by their last run's duration at ``budget``, longest first; a
    notebook with no such record keeps its place after those that have one."""
    def key(indexed):
        index, task = indexed
        seconds = last_duration(Path(published_dir) / Path(task[0]).name, budget)
        return (seconds is None, -(seconds or 0.0), index)

    return [task for _, task in sorted(enumerate(tasks), key=key)]


def _execute_all(tasks, jobs: int, description: str, progress: bool) -> list[NotebookRun]:
    """Run every task (in ``jobs`` processes), reporting each as it ends; runs in task order."""
    from tqdm.auto import tqdm

    runs: dict[str, NotebookRun] = {}
    with tqdm(total=len(tasks), desc=description, unit="nb", disable=not progress,
              file=sys.stderr) as bar:
        def done(run: NotebookRun):
            runs[run.name] = run
            bar.update(1)
            bar.write(run.describe())

        if jobs == 1 or len(tasks) == 1:
            for task in tasks:
                bar.set_postfix_str(Path(task[0]).stem)
                done(execute_one(*task))
        else:
            # Spawned, not forked: a fork of a process that has started TensorFlow's
            # threads (a notebook session, a test run) can deadlock.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context) as pool:
                bar.set_postfix_str(f"{min(jobs, len(tasks))} at a time")
                futures = [pool.submit(execute_one, *task) for task in tasks]
                for future in as_completed(futures):
                    done(future.result())
    return [runs[Path(source).stem] for source, _, _ in tasks]


def execute_one(source: str, target: str, parameters: dict) -> NotebookRun:
    """Run one notebook with papermill; never raises for an error inside the notebook."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    # Headless plotting, and TensorFlow's start-up banners kept out of the outputs.
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    name = Path(source).stem
    started = time.perf_counter()
    error = None
    log = kernel_log(target)
    try:
        with open(log, "w") as log_file:
            papermill.execute_notebook(source, target, parameters=parameters, kernel_name=KERNEL_NAME,
                                       cwd=str(Path(source).parent), progress_bar=False,
                                       log_output=False,
                                       execution_timeout=CELL_TIMEOUT.get(parameters.get("budget")),
                                       kernel_manager_class=_kernel_manager_writing_to(log_file))
    except PapermillExecutionError as failure:
        error = dict(cell=failure.cell_index, execution_count=failure.exec_count,
                     source=_first_line(failure.source, 80), exception=failure.ename,
                     message=_first_line(failure.evalue))
    except Exception as failure:  # a cell's time limit, the kernel died, not a notebook ...
        error = dict(_last_started_cell(target), exception=type(failure).__name__,
                     message=_first_line(str(failure)))
    return NotebookRun(name, target, time.perf_counter() - started, error)


def _last_started_cell(target) -> dict:
    """The cell running when execution stopped outside any cell's own error (its time limit,
    the kernel's death): the last one papermill started in the executed copy (cell None when
    none started or there is no copy)."""
    import nbformat

    try:
        cells = nbformat.read(target, as_version=4).cells
    except Exception:  # no copy was written, or an unreadable one
        return dict(cell=None)
    started = [(index, cell) for index, cell in enumerate(cells)
               if cell.get("metadata", {}).get("papermill", {}).get("start_time")]
    if not started:
        return dict(cell=None)
    index, cell = started[-1]
    return dict(cell=index, execution_count=cell.get("execution_count"),
                source=_first_line(cell.source, 80))


def kernel_log(target) -> Path:
    """Where the kernel's own output goes: beside the executed copy, ``NN_name.kernel.log``."""
    target = Path(target)
    return target.with_name(target.stem + ".kernel.log")


def _kernel_manager_writing_to(log_file):
    # The kernel process writes to its stdout and stderr file descriptors (TensorFlow's
    # C++ start-up lines, ipykernel's transport warning) outside any cell; they would
    # otherwise land in the middle of `effnet reproduce`'s progress bar. Cell output
    # still reaches the notebook. jupyter_client passes start_kernel's keywords to Popen.
    from jupyter_client.manager import AsyncKernelManager

    class KernelManagerWithLog(AsyncKernelManager):
        async def start_kernel(self, **kw):
            kw.setdefault("stdout", log_file)
            kw.setdefault("stderr", log_file)
            return await super().start_kernel(**kw)

    return KernelManagerWithLog


def _first_line(text: str, limit: int = 300) -> str:
    text = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return text if len(text) <= limit else text[:limit] + "..."
