"""The explorer as a user meets it: JupyterLab in a real (headless) browser.

Starts JupyterLab on 127.0.0.1 with a kernel named like the one ``make lab`` registers,
opens ``05_flops_memory_explorer`` in Debian's Chromium through Playwright's Python API,
runs every cell, and works the explorer's controls: the multiply-adds it displays must
follow the group size and the resolution to the profiler's values, with no JavaScript error
on the way. A screenshot goes to ``build/browser/``. Needs ``chromium`` (apt) and
``playwright`` (pip): ``.ci/run`` installs both; elsewhere the test skips and says which is
missing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "05_flops_memory_explorer.ipynb"
SCREENSHOT = ROOT / "build" / "browser" / "explorer.png"
# Console messages that are not errors of the page: JupyterLab's own offline look-ups.
OFFLINE_NOISE = ("Failed to load resource", "net::ERR_", "Failed to fetch", "favicon",
                 "extension manager", "listings", "Content Security Policy")


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from effnet_lib.lessons.environment import KERNEL_DISPLAY_NAME, KERNEL_NAME

    browser = chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine: `apt-get install chromium` (CI does)")
    pytest.importorskip("playwright", reason="no playwright: `pip install -e .[browser]` (CI does)")
    home = tmp_path_factory.mktemp("jupyter")
    kernel = home / "data" / "kernels" / KERNEL_NAME
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": KERNEL_DISPLAY_NAME, "language": "python"}))
    # Every cell rendered (JupyterLab 4 renders only the cells in view by default), no news.
    settings = home / "settings" / "@jupyterlab"
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false"}))
    work = home / "notebooks"  # a copy: the browser saves, and the sources must stay clean
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, work / NOTEBOOK)
    port, token = free_port(), "effnet-browser-test"
    env = dict(os.environ, JUPYTER_PATH=str(home / "data"), JUPYTER_CONFIG_DIR=str(home / "config"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), TF_CPP_MIN_LOG_LEVEL="2",
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"))
    log = open(home / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--ServerApp.open_browser=False", "--LabApp.expose_app_in_browser=True",
         # as `make lab` runs it: lessons saved without outputs
         "--ContentsManager.pre_save_hook=effnet_lib.lessons.environment.strip_outputs_on_save"] + (["--allow-root"] if os.geteuid() == 0 else []),
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                pytest.fail(f"JupyterLab did not start: {(home / 'lab.log').read_text()[-2000:]}")
            time.sleep(1)
    yield dict(url=url, token=token, browser=browser, work=work)
    server.terminate()
    server.wait(timeout=30)
    log.close()


def summary_numbers(page) -> str:
    """The configuration column's summary: "B0-G16-LN_PN at 160px ... multiply-adds per image X G"."""
    return page.locator(".widget-html", has_text="multiply-adds per image").first.inner_text()


def macs_shown(text: str) -> str:
    line = next(line for line in text.splitlines() if line.startswith("multiply-adds per image"))
    return line.split("image")[1].strip()


def expected(name: str, image_size: int) -> str:
    from effnet_lib.profiling import profile

    return f"{profile(name, image_size=image_size).macs / 1e9:.3f} G"


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_explorer_renders_and_follows_its_controls_in_a_browser(lab):
    from playwright.sync_api import sync_playwright

    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=lab["browser"], headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1500, "height": 1500})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        try:
            work_the_explorer(page, lab)
        except Exception:
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT.with_name("failure.png")))
            raise
        finally:
            browser.close()
    errors = [m for m in problems if not any(noise in m for noise in OFFLINE_NOISE)]
    assert not errors, f"JavaScript errors in the console: {errors}"
    assert SCREENSHOT.stat().st_size > 10_000
    saved = json.loads((lab["work"] / NOTEBOOK).read_text())  # saved by the test, as `make lab` saves
    code = [cell for cell in saved["cells"] if cell["cell_type"] == "code"]
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)


def work_the_explorer(page, lab):
    """Open the lesson, run all its cells, and work the configuration column's controls."""
    page.goto(f"{lab['url']}/lab/tree/{NOTEBOOK}?token={lab['token']}")
    page.locator(".jp-Notebook").first.wait_for(timeout=120_000)
    # The kernel the notebook names must start. JupyterLab sometimes asks first, with that
    # kernel preselected: then take it.
    deadline = time.time() + 120
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    while not page.get_by_text("Python (effnet-kit) | Idle").count():
        if dialog.count() and dialog.first.is_visible():
            assert "Python (effnet-kit)" in dialog.first.locator("select").first.evaluate(
                "s => s.options[s.selectedIndex].text")
            dialog.first.get_by_role("button", name="Select").click()
        assert time.time() < deadline, "the kernel 'Python (effnet-kit)' did not start"
        page.wait_for_timeout(500)
    # Run > Run All Cells, as JupyterLab's command (the menu's own)
    # (not awaited: the command's promise settles only when every cell has run)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    page.locator(".widget-dropdown", has_text="group size").first.wait_for(timeout=180_000)
    page.get_by_text("Python (effnet-kit) | Idle").wait_for(timeout=180_000)  # all cells ran
    page.locator(".widget-dropdown", has_text="group size").first.scroll_into_view_if_needed()

    text = summary_numbers(page)
    assert "B0-G16-LN_PN at 160px" in text
    assert macs_shown(text) == expected("B0-G16-LN_PN", 160)

    # group size 16 -> 1 (expansion follows the paper's pairing: 6)
    page.locator(".widget-dropdown", has_text="group size").first.locator("select").select_option("1")
    page.wait_for_function("() => [...document.querySelectorAll('.widget-html')].some("
                           "e => e.innerText.includes('B0-G1-LN_PN at 160px'))", timeout=30_000)
    assert macs_shown(summary_numbers(page)) == expected("B0-G1-LN_PN", 160)

    # resolution 160 -> 176: the slider's handle, moved with the keyboard (step 4)
    slider = page.locator(".widget-slider", has_text="resolution").first
    slider.locator(".noUi-handle").first.focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => [...document.querySelectorAll('.widget-html')].some("
                           "e => e.innerText.includes('B0-G1-LN_PN at 176px'))", timeout=30_000)
    assert macs_shown(summary_numbers(page)) == expected("B0-G1-LN_PN", 176)

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.get_by_text("Python (effnet-kit) | Idle").wait_for(timeout=60_000)  # plots redrawn
    page.locator(".widget-vbox", has_text="Configuration").first.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOT))
    before = (lab["work"] / NOTEBOOK).stat().st_mtime
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    deadline = time.time() + 30
    while (lab["work"] / NOTEBOOK).stat().st_mtime == before and time.time() < deadline:
        page.wait_for_timeout(250)
