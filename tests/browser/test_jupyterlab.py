"""A real browser: JupyterLab and Debian's Chromium, driven by Playwright, run a tutorial
notebook, see the graphs and widgets render, press the editor's Submit button and see the
run id appear and the run finish; any browser console error fails the test. The
screenshot's path is printed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers import free_port
from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
NOTEBOOK = "02-submit-and-watch.ipynb"
SCREENSHOTS = ROOT / "out" / "browser"
pytestmark = pytest.mark.browser


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    """A JupyterLab on 127.0.0.1 with a copy of the tutorial; yields its URL (with token)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is missing: ./dev test installs it (apt-get install chromium)"
        )
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, work / NOTEBOOK)
    dirs = {name: tmp_path / name for name in ("config", "runtime", "settings", "workspaces")}
    for folder in dirs.values():
        folder.mkdir()
    news = dirs["settings"] / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    port, token = free_port(), "zocalo-nb-browser-test"
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
    }
    env.pop("ZOCALO_NB_BROKER", None)
    log = (tmp_path / "lab.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
         "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={work}", "--LabApp.news_url=None",
         "--LabApp.extension_manager=readonly",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.expose_app_in_browser=True"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text())
            time.sleep(0.5)
    try:
        yield f"{url}/lab/tree/{NOTEBOOK}?token={token}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


KERNEL_IDLE = """() => {
  const app = window.jupyterapp;
  const widget = app && app.shell.currentWidget;
  const kernel = widget && widget.sessionContext && widget.sessionContext.session
    && widget.sessionContext.session.kernel;
  return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""


def test_a_tutorial_runs_in_jupyterlab_and_its_submit_button_works(
    lab: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(lab)
            page.wait_for_function(KERNEL_IDLE, timeout=90_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            submit = page.locator(".jupyter-widgets button", has_text="Submit")
            submit.wait_for(timeout=90_000)
            page.wait_for_function(KERNEL_IDLE, timeout=90_000)
            # the graphs render: SVG outputs (JupyterLab shows them as images) and the
            # monitor's and editor's inline SVG
            assert page.locator(".jp-RenderedSVG").count() >= 1
            assert page.locator(".zocalo-nb-graph svg").count() >= 2
            assert page.locator(".widget-html-content", has_text="valid: 3 steps").count() == 1
            submit.click()
            done = page.locator(".widget-html-content", has_text="submitted run")
            done.wait_for(timeout=30_000)
            assert len(done.inner_text().split()) == 3  # "submitted run <id>"
            # the run executes (the services still run: the tutorial no longer stops them
            # before anyone can press Submit) and the editor's monitor shows it finished
            run_id = done.inner_text().split()[2]
            finished = page.locator(".widget-html-content",
                                    has_text=f"{run_id}: finished; 3 succeeded")  # fmt: skip
            finished.wait_for(timeout=60_000)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shot = SCREENSHOTS / "jupyterlab-tutorial.png"
            finished.scroll_into_view_if_needed()
            page.screenshot(path=str(shot), full_page=False)
            with capsys.disabled():
                print(f"\nscreenshot of the browser test: {shot}")
        finally:
            browser.close()
    assert errors == [], errors
