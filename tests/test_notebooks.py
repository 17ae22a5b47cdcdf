"""The notebooks: committed clean, run headless at the smoke budget, and their records checked.

One test runs every ``notebooks/NN_*.ipynb`` through
``run_notebooks`` (so the runner is tested too); each notebook then has a check
in :data:`CHECKS` that reads its record back. A notebook without a check fails.
"""

import json
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest

from effnet_lib.cli import main
from effnet_lib.lessons.records import load_record
from effnet_lib.lessons.runner import NOTEBOOKS_DIR, find_notebooks, run_notebooks, select

pytestmark = pytest.mark.notebooks
NOTEBOOKS = {path.stem: path for path in find_notebooks().values()}
PARAMETERS = ("budget", "data", "output_dir", "seed")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------- committed notebooks

SETTINGS_NAMES = ("SETTINGS", "S")  # the budget's settings, as the lessons name them


def setup_cells(notebook) -> tuple[list[str], list[str]]:
    """(setup, rest): a lesson's code cells up to the one that imports and checks the budget
    (parameters, environment check, imports, settings, data), and the cells after it."""
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    last = next(i for i, source in enumerate(code) if "check_budget(" in source and "import" in source)
    return code[:last + 1], code[last + 1:]


def settings_read(sources, settings: dict) -> tuple[list[str], int]:
    """(every ``SETTINGS["key"]``, or an alias's ``alias["key"]``, that the cells read and the
    budget's settings lack, as ``name['key']``; how many such reads there are)."""
    import ast

    aliases, missing, reads = dict(settings), [], set()

    def resolve(node):
        if isinstance(node, ast.Name):
            return aliases.get(node.id)
        if (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, str)):
            parent = resolve(node.value)
            if isinstance(parent, dict):
                reads.add(id(node))
                if node.slice.value not in parent:
                    missing.append(f"{ast.unparse(node.value)}[{node.slice.value!r}]")
                    return None
                return parent[node.slice.value]
        return None

    trees = [ast.parse(source) for source in sources]  # kept alive: reads counts node ids
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name):
                value = resolve(node.value)
                if isinstance(value, dict):
                    aliases[node.targets[0].id] = value
            elif isinstance(node, ast.Subscript):
                resolve(node)
    return sorted(set(missing)), len(reads)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_committed_notebook_is_clean_with_one_parameters_cell(name):
    notebook = nbformat.read(NOTEBOOKS[name], as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is None and not cell.outputs for cell in code), \
        f"{name}: commit it without outputs and execution counts"
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: {len(tagged)} cells tagged 'parameters', expected one"
    names = {line.split("=")[0].strip() for line in tagged[0].source.splitlines() if "=" in line}
    assert names == set(PARAMETERS), f"{name}: parameters {sorted(names)}"


@pytest.mark.parametrize("budget", ["quick", "full"])
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_a_lessons_setup_runs_at_the_budget_and_holds_every_setting_the_lesson_reads(
        name, budget, tmp_path, monkeypatch):
    # The tests run every lesson whole at the smoke budget only: a quick or full budget
    # whose settings lack a key that a later cell reads would fail only after the minutes
    # (or hours) before that cell. Run the setup alone, then check every read.
    import matplotlib

    matplotlib.use("Agg")
    notebook = nbformat.read(NOTEBOOKS[name], as_version=4)
    setup, rest = setup_cells(notebook)
    monkeypatch.chdir(NOTEBOOKS_DIR)  # where a kernel runs the lesson
    namespace = {}
    exec(setup[0], namespace)  # the parameters cell, then what papermill would inject
    # A folder source is used as given: the setup does not generate a data set.
    namespace.update(budget=budget, data=f"folder:{tmp_path / 'images'}",
                     output_dir=str(tmp_path / "out"), seed=0)
    for source in setup[1:]:
        exec(source, namespace)
    settings = {n: namespace[n] for n in SETTINGS_NAMES if isinstance(namespace.get(n), dict)}
    missing, reads = settings_read(rest, settings)
    assert missing == [], f"{name} at {budget}"
    if name[:2] in ("02", "03", "04"):  # the lessons whose work the budget sizes
        assert settings and reads >= 5, f"{name}: {reads} reads of SETTINGS or S found"
    import tensorflow as tf

    assert not tf.config.functions_run_eagerly()  # only smoke runs eagerly


def test_the_settings_check_finds_a_key_the_budget_lacks():
    cells = ['ms = SETTINGS["models"]\nx = ms["native"] + ms["half"]\ny = S.get("extra")',
             'run(S["epochs"], SETTINGS["sweep"])']
    settings = {"SETTINGS": {"models": {"native": 224}, "sweep": {}}, "S": {"epochs": 1}}
    assert settings_read(cells, settings) == (["ms['half']"], 5)
    assert settings_read(cells, {"SETTINGS": {"sweep": {}}, "S": {}}) == (
        ["SETTINGS['models']", "S['epochs']"], 3)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_a_lesson_names_the_kits_kernel_and_checks_its_environment_first(name):
    from effnet_lib.lessons.environment import KERNEL_NAME

    notebook = nbformat.read(NOTEBOOKS[name], as_version=4)
    assert notebook.metadata.kernelspec.name == KERNEL_NAME
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert re.search(r"check_environment\(budget, output_dir(, runs_models=False)?\)",
                     code[1].source)
    # run by hand, a lesson writes under build/ (ignored by git), never over figures/
    assert 'output_dir = "../build/figures"' in code[0].source
    makefile = (NOTEBOOKS_DIR.parent / "Makefile").read_text()
    assert f"KERNEL := {KERNEL_NAME}" in makefile


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_every_notebook_has_a_check(name):
    assert name in CHECKS, f"no check for notebook {name}: add one to CHECKS in tests/test_notebooks.py"


# ----------------------------------------------------------------- smoke run of them all

def _png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > len(PNG_SIGNATURE) and \
        path.read_bytes()[:8] == PNG_SIGNATURE


def _fraction(value) -> bool:
    return isinstance(value, float) and 0.0 <= value <= 1.0


@pytest.mark.slow
def test_every_notebook_runs_at_smoke_and_records_sane_numbers(tmp_path):
    """Every lesson runs headless at the smoke budget, two at a time as `make reproduce` runs
    them (the runner's waves and process pool are part of the user's path); then each one's
    record is checked by its entry in CHECKS, all of them, the failures listed by notebook.
    One test rather than one per notebook: pytest-xdist would run the notebooks once in each
    worker that got one of them (its loadgroup does not group tests under pytest 9)."""
    output_dir = tmp_path / "figures"
    result = run_notebooks(budget="smoke", output_dir=output_dir, build_dir=tmp_path / "build",
                           jobs=2, progress=False, say=lambda *_: None)
    failures = {}
    for name in sorted(NOTEBOOKS):
        try:
            check_smoke_run(name, result, output_dir)
        except Exception as error:  # every notebook is checked, whatever an earlier one did
            failures[name] = f"{type(error).__name__}: {error}"
    assert not failures, "\n\n".join(f"{name}: {message}" for name, message in failures.items())


def check_smoke_run(name, result, output_dir):
    assert name in CHECKS, f"no check for notebook {name}: add one to CHECKS"
    run = next(r for r in result.runs if r.name == name)
    assert run.ok, run.describe()
    record = load_record(output_dir, name)
    assert record["figures"], f"{name} recorded no figures"
    for figure in record["figures"]:
        assert figure.endswith(".png") and _png(output_dir / figure), f"{name}: {figure} is not a PNG"
    CHECKS[name](record, output_dir)


def check_verdicts(record, expected: int | None = None):
    """The verdict form, and ``holds`` recomputed from the recorded numbers and criterion."""
    from effnet_lib.lessons.verdicts import INCONCLUSIVE, judge

    verdicts = record["verdicts"]
    assert verdicts, "no verdicts recorded"
    if expected is not None:
        assert len(verdicts) == expected
    for v in verdicts:
        assert {"claim", "reported", "source", "measured", "interval", "criterion", "holds"} <= set(v)
        assert v["claim"] and v["source"] and v["reported"] not in (None, "")
        assert v["criterion"]["kind"] in ("above", "below", "within") and v["criterion"]["text"]
        assert v["holds"] in (True, False, INCONCLUSIVE)
        if v["interval"] is not None:
            low, high = v["interval"]
            assert low <= v["measured"] <= high, v
        assert judge(v["criterion"], v["measured"], v["interval"]) == v["holds"], v


def check_01(record, output_dir):
    import effnet_lib as el

    b0 = el.profile("B0")
    assert record["b0_macs"] == b0.macs and record["b0_params"] == b0.params
    stages = el.profile("B0-G1-GN").by("stage")
    assert record["b0_stage_macs"] == stages.macs.tolist()
    assert record["b0_stage_params"] == stages.params.tolist()
    g16 = el.profile("B0-G16-GN")
    assert record["g16_over_g1_macs"] == pytest.approx(g16.macs / stages.macs.sum())
    assert record["b0_trainable_params_built"] == record["b0_keras_applications_params"] == 5288548
    assert (output_dir / "model_table.csv").is_file() and (output_dir / "model_table.md").is_file()
    check_verdicts(record)


def check_02(record, output_dir):
    import effnet_lib as el

    g1, g16 = el.profile("B0-G1-GN"), el.profile("B0-G16-GN")
    assert record["b0_macs_ratio_g16_over_g1"] == pytest.approx(g16.macs / g1.macs, abs=1e-3)
    assert record["b0_params_ratio_g16_over_g1"] == pytest.approx(g16.params / g1.params, abs=1e-3)
    low, high = record["macs_ratio_range"]
    assert 1.0 < low <= high < 2.0  # G16 costs more multiply-adds at every size
    sweep = record["sweep"]
    for row in sweep["rows"]:
        assert row["seconds"] > 0 and row["macs_per_s_G"] > 0
        expected = sweep["image_size"] ** 2 * 9 * row["group_size"] * sweep["channels"] * sweep["batch_size"]
        assert row["macs"] == 3 * expected  # forward + backward
    assert {w["winner"] for w in record["conv_impl_winners_at_g16"]} <= {"native", "split"}
    rows = {r["variant"]: r for r in record["throughput"]["rows"]}
    assert rows["G1-GN-Native"]["measured_speedup_vs_G1_GN"] == 1.0
    ratio = rows["G16-GN-Native"]["measured_speedup_vs_G1_GN"]
    assert record["g16_over_g1_throughput_here"] == pytest.approx(ratio, abs=1e-3)
    low, high = record["g16_over_g1_throughput_interval"]
    assert low <= record["g16_over_g1_throughput_here"] <= high
    assert record["g16_over_g1_throughput_ipu_reported"] == pytest.approx(29700 / 26400, abs=1e-3)
    predicted = record["throughput"]["predicted_if_macs_bound"]
    # multiply-add bound: speed-up = 1 / multiply-add ratio (counted at the budget's sizes)
    assert predicted["G1-GN-Native"] == pytest.approx(1.0)
    assert predicted["G16-GN-Native"] < 1.0 and predicted["G16-GN-Native"] < predicted["G16-GN-Half"]
    for row in rows.values():  # the flag is computed from the speeds it describes
        if row["variant"].endswith("-Half"):
            native = rows[row["variant"].replace("-Half", "-Native")]
            assert row["against_pixels"] == (row["measured_speedup_vs_G1_GN"]
                                             < native["measured_speedup_vs_G1_GN"])
    check_verdicts(record)


def check_03(record, output_dir):
    spreads = record["batch_dependence"]
    smallest = min(spreads["BN"], key=int)
    assert spreads["BN"][smallest] > 1e-3  # BN: the batch mates move the output
    for norm in ("GN", "LN", "LN_PN"):
        assert max(spreads[norm].values()) < 1e-5, (norm, spreads[norm])
    share = record["power_share_last_layer"]
    assert all(_fraction(v) for v in share.values())
    assert share["LN"] > share["LN_PN"] and share["LN"] > share["BN"]
    settings = record["microbatch_settings"]
    runs = record["microbatch"]
    assert {r["norm"] for r in runs} == {"BN", "GN", "LN", "LN_PN"}
    for run in runs:  # every micro-batch sees the same images at the same global batch
        assert _fraction(run["top1"])
    assert len(runs) == 4 * len(settings["micro_batches"]) * len(settings["seeds"])
    assert {r["images_seen"] for r in runs} == {settings["images_seen"]}
    assert (output_dir / "03_microbatch.csv").is_file()
    check_verdicts(record)


def check_04(record, output_dir):
    from effnet_lib.lessons import resolution_study as study

    settings = record["settings"]
    assert settings == study.settings(record["budget"])
    assert record["crops"]["smallest"] >= record["crops"]["min_object_covered"] - 1e-6
    fixres = record["fixres"]
    assert all(_fraction(r["top1"]) and r["top1_low"] <= r["top1"] <= r["top1_high"] for r in fixres)
    assert settings["half"] in [r["image_size"] for r in fixres]
    phases = record["phases"]
    assert len(phases) == 4 and all(_fraction(p["top1"]) for p in phases)
    images = dict(train=settings["data"]["train"] * settings["epochs"],
                  finetune=settings["data"]["train"] * settings["finetune_epochs"])
    budget = record["budget"]
    expected_train = [study.training_cost(size, images["train"], budget) / 1e9
                      for size in (settings["half"],) * 2 + (settings["native"],) * 2]
    assert [p["train_gmacs"] for p in phases] == pytest.approx(expected_train)
    tuned = study.finetune_cost(settings["native"], images["finetune"], budget) / 1e9
    assert [p["finetune_gmacs"] for p in phases] == pytest.approx([0, tuned, 0, tuned])
    # fine-tuning the last blocks: the whole forward pass, a backward pass through them only
    forward = study.training_cost(settings["native"], images["finetune"], budget) / 3e9
    head = study.finetune_cost(settings["native"], images["finetune"], budget, study.HEAD_FILTER) / 1e9
    assert forward < head < tuned < 3 * forward
    head_only = record["head_only_finetune"]
    assert head_only["variable_filter"] == list(study.HEAD_FILTER)
    assert _fraction(head_only["top1"]) and head_only["top1_low"] <= head_only["top1"] <= head_only["top1_high"]
    assert record["cost_share"] == pytest.approx(phases[1]["total_gmacs"] / phases[3]["total_gmacs"])
    assert record["modulo_32_pairs_kept"] == record["modulo_32_pairs"] == 6
    check_verdicts(record, expected=4)


def check_05(record, output_dir):
    from effnet_lib.profiling import balanced_splits, profile, stage_balance, training_memory

    for key, name in (("config", "B0-G16-LN_PN"), ("baseline", "B0-G1-GN")):
        shown = record[key]
        counted = profile(name, image_size=shown["image_size"], batch_size=shown["batch_size"],
                          precision="16")
        assert shown["name"] == name
        assert shown["macs_per_image"] * shown["batch_size"] == counted.macs
        assert shown["params"] == counted.params
        assert shown["activation_bytes"] == counted.activation_bytes
        assert shown["training_memory_bytes"] == training_memory(counted)["total"]
    config, baseline = record["config"], record["baseline"]
    assert record["ratios"]["macs_per_image"] == pytest.approx(
        config["macs_per_image"] / baseline["macs_per_image"])
    steps = record["one_change_at_a_time"]
    assert [s["model"] for s in steps] == ["B0-G1-GN", "B0-G16-GN", "B0-G16-GN", "B0-G16-LN_PN"]
    assert steps[3]["multiply_adds_G x previous"] == 1.0  # the norm adds no multiply-adds
    assert record["proxy_norm_activation_ratio"] > 1.0  # Proxy Norm keeps more for backward
    half = profile("B0-G16-GN", image_size=160)
    assert record["balanced_splits_4"] == balanced_splits(half, 4)
    assert record["balanced_imbalance_4"] == pytest.approx(
        stage_balance(half, record["balanced_splits_4"]).imbalance.max())
    assert "block7a" in record["g16_blocks"]["fewer"]  # not every block gets more expensive
    assert (output_dir / "05_resolution_scaling.csv").is_file()
    check_verdicts(record, expected=2)


def check_06(record, output_dir):
    from effnet_lib.paper.tables import flops_table

    ratio = flops_table().computed_over_reported.dropna()
    shown = record["flops_computed_over_reported"]
    assert (shown["min"], shown["max"], shown["rows"]) == (ratio.min(), ratio.max(), len(ratio))
    assert 0.9 < shown["min"] <= shown["max"] < 1.1
    assert record["lessons_missing"] == []
    rows = {row["variant"]: row for row in record["throughput"]}
    assert set(rows) == {"G1-GN-Native", "G16-GN-Native", "G16-GN-Half", "G16-LN_PN-Native",
                         "G16-LN_PN-Half"}
    assert rows["G16-GN-Half"]["reported_ipu_pod16_images_per_s"] == 47300
    gathered = record["verdicts_gathered"]
    by_lesson = {}
    for v in gathered:
        by_lesson.setdefault(v["lesson"], []).append(v)
    for lesson in ("01", "02", "03", "04", "05"):
        recorded = load_record(output_dir, next(n for n in NOTEBOOKS if n.startswith(lesson)))
        assert len(by_lesson[lesson]) == len(recorded["verdicts"])
    check_verdicts(dict(verdicts=gathered))
    text = (output_dir / "verdicts.md").read_text()
    for v in gathered:
        assert v["claim"] in text
    from effnet_lib.lessons.verdicts import summary
    assert summary(gathered) in text  # the prose is the one written from the table
    for name in ("flops_params.csv", "skip_connections.md", "06_throughput_here_vs_ipu.csv"):
        assert (output_dir / name).is_file()


CHECKS = {
    "01_efficientnet_anatomy": check_01,
    "02_group_convolutions": check_02,
    "03_proxy_norm": check_03,
    "04_resolution_finetuning": check_04,
    "05_flops_memory_explorer": check_05,
    "06_reproduce_paper": check_06,
}


# ----------------------------------------------------------------- the runner itself

def _notebook(path: Path, *code: str) -> None:
    cells = [nbformat.v4.new_code_cell('budget = "quick"\ndata = "shapes"\noutput_dir = "."\nseed = 0')]
    cells[0].metadata["tags"] = ["parameters"]
    cells += [nbformat.v4.new_code_cell(source) for source in code]
    nbformat.write(nbformat.v4.new_notebook(cells=cells,
                                            metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                     "display_name": "Python 3"}}), path)


@pytest.mark.slow
def test_a_failing_notebook_is_named_with_its_cell_and_the_run_goes_on(tmp_path, capfd):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "01_breaks.ipynb", "x = 1", "raise RuntimeError('boom in the second cell')")
    _notebook(notebooks / "02_works.ipynb",
              "import json, os, sys\n"
              "json.dump(dict(python=sys.executable, cwd=os.getcwd(), budget=budget, data=data,\n"
              "               seed=seed, output_dir=output_dir), open(f'{output_dir}/02.json', 'w'))",
              "os.write(2, b'written to the kernel process stderr\\n')")
    (notebooks / "notes.ipynb").write_text("not a numbered lesson: ignored")
    messages = []
    result = run_notebooks(budget="smoke", jobs=2, output_dir=tmp_path / "out", build_dir=tmp_path / "build",
                           notebooks_dir=notebooks, data="folder:relative/images", seed=3,
                           progress=False, say=messages.append)
    assert not result.ok
    assert [r.name for r in result.runs] == ["01_breaks", "02_works"]
    failed = result.failed[0]
    assert failed.name == "01_breaks" and failed.error["exception"] == "RuntimeError"
    assert failed.error["message"] == "boom in the second cell"
    # Cells of the executed copy: parameters, injected parameters, "x = 1", the raise.
    assert failed.error["cell"] == 3 and "raise RuntimeError" in failed.error["source"]
    assert any("01_breaks: FAILED at cell 3" in m for m in messages)
    assert result.runs[1].ok
    seen = json.loads((tmp_path / "out" / "02.json").read_text())
    assert seen["python"] == sys.executable  # the kernel is this environment's Python
    assert Path(seen["cwd"]) == notebooks.resolve()
    assert seen["budget"] == "smoke" and seen["seed"] == 3
    assert seen["output_dir"] == str((tmp_path / "out").absolute())
    assert seen["data"] == f"folder:{Path('relative/images').absolute()}"
    assert (tmp_path / "build" / "02_works.ipynb").is_file()
    # What the kernel process writes outside the notebook goes to its log, not the terminal.
    assert "written to the kernel process stderr" in (tmp_path / "build" / "02_works.kernel.log").read_text()
    assert "written to the kernel process stderr" not in capfd.readouterr().err
    assert "kernel log:" in failed.describe()
    source = nbformat.read(notebooks / "01_breaks.ipynb", as_version=4)
    assert all(not cell.outputs for cell in source.cells)  # the sources are never written


def test_unknown_notebook_number_is_a_clear_error(capsys):
    with pytest.raises(ValueError, match="no notebook numbered '99'; valid numbers: 01"):
        select(["99"])
    assert main(["reproduce", "--budget", "smoke", "--notebooks", "99"]) == 2
    err = capsys.readouterr().err
    assert "no notebook numbered '99'" in err and "03 (03_proxy_norm)" in err
    # The budget's old flag still works, and says it is deprecated.
    assert main(["reproduce", "--profile", "smoke", "--notebooks", "99"]) == 2
    err = capsys.readouterr().err
    assert "--profile is now --budget" in err and "no notebook numbered '99'" in err


def test_select_by_number():
    assert [p.stem for p in select("3,01")] == ["03_proxy_norm", "01_efficientnet_anatomy"]
    assert select() == sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def test_reproduce_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["reproduce", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--budget", "--notebooks", "--jobs", "--output-dir", "--data"):
        assert flag in out


def test_the_timing_lesson_runs_alone_and_06_after_the_rest():
    # With --jobs 2, 02's timings must not share the cores with another kernel, and 06
    # gathers every other record, so it comes last.
    from effnet_lib.lessons.runner import waves

    tasks = [(str(path), "", {}) for path in select()]
    order = [[Path(source).name[:2] for source, _, _ in wave] for wave in waves(tasks)]
    assert order == [["02"], ["01", "03", "04", "05"], ["06"]]
    assert waves([(str(select("03")[0]), "", {})]) == [[(str(select("03")[0]), "", {})]]


def test_within_a_wave_the_longest_notebook_of_the_last_run_starts_first(tmp_path):
    # Two at a time, the long lesson must not be the last to start: ordered by the duration
    # papermill recorded in each published copy of the same budget.
    from effnet_lib.lessons.runner import longest_first

    def published(name, budget, seconds):
        meta = {"papermill": {"parameters": {"budget": budget}, "duration": seconds}}
        (tmp_path / name).write_text(json.dumps({"metadata": meta, "cells": []}))

    tasks = [(f"/src/{name}", "", {}) for name in ("01_a.ipynb", "03_b.ipynb", "04_c.ipynb",
                                                   "05_d.ipynb")]
    published("01_a.ipynb", "quick", 61.0)
    published("03_b.ipynb", "quick", 617.0)
    published("04_c.ipynb", "quick", 744.0)
    published("05_d.ipynb", "smoke", 900.0)  # another budget's duration says nothing
    order = [Path(t[0]).name[:2] for t in longest_first(tasks, tmp_path, "quick")]
    assert order == ["04", "03", "01", "05"]
    assert longest_first(tasks, tmp_path / "none", "quick") == tasks


@pytest.mark.slow
def test_a_cell_over_its_budgets_time_limit_fails_named_instead_of_waiting(tmp_path, monkeypatch):
    """The per-cell limit reaches papermill: a run can never wait forever on a cell (nbclient
    can miss the wake-up of a reply; see runner.CELL_TIMEOUT)."""
    from effnet_lib.lessons import runner

    monkeypatch.setitem(runner.CELL_TIMEOUT, "smoke", 3)
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "01_sleeps.ipynb", "import time", "time.sleep(60)")
    started = time.perf_counter()
    result = run_notebooks(budget="smoke", jobs=1, output_dir=tmp_path / "out",
                           build_dir=tmp_path / "build", notebooks_dir=notebooks, progress=False,
                           say=lambda *_: None)
    assert time.perf_counter() - started < 45
    (failed,) = result.failed
    assert failed.error["cell"] == 3 and "time.sleep(60)" in failed.error["source"]
    assert "timed out" in failed.describe().lower()
