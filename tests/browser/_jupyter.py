"""Driving JupyterLab / Notebook 7 from Python: a server on 127.0.0.1, notebooks opened in chromium, kernels.

Shared by the browser-test fixtures (conftest.py) and the widget benchmark (benchmarks/widgets.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat
from jupyter_client import BlockingKernelClient

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


@dataclass
class Lab:
    """A running JupyterLab server (which also serves Notebook 7 under /notebooks)."""

    url: str
    token: str
    root: Path
    runtime_dir: Path
    comm_mode: str
    log: Path

    def api(self, path: str, method: str = "GET") -> object:
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings: Path, comm_mode: str) -> None:
    """User settings: no news fetching; widget comms over subshells or not."""
    for plugin, values in {
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/apputils-extension/kernels-settings": {"commsOverSubshells": comm_mode},
    }.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _wait_ready(lab: Lab, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{lab.log.read_text()[-3000:]}")
        try:
            lab.api("/api/status")
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"JupyterLab did not answer /api/status in {timeout} s:\n{lab.log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and its kernels (its own process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def serve_lab(base: Path, comm_mode: str):
    """Run JupyterLab in ``base`` (root, settings, runtime dirs) with a token; yield the :class:`Lab`.

    The kernel imports conceptscope from this checkout even without an install.
    """
    root, settings, runtime = base / "root", base / "settings", base / "runtime"
    for d in (root, settings, runtime):
        d.mkdir(parents=True, exist_ok=True)
    _write_settings(settings, comm_mode)
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
    }
    log = base / "lab.log"
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True", "--JupyterNotebookApp.expose_app_in_browser=True",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, runtime, comm_mode, log)
    try:
        _wait_ready(lab, proc)
        yield lab
    finally:
        _stop(proc)


class Kernel:
    """Runs code in a notebook's kernel (next to the browser's connection) and returns stdout."""

    def __init__(self, lab: Lab, session: dict):
        self.lab, self.session_id = lab, session["id"]
        kernel_id = session["kernel"]["id"]
        self.client = BlockingKernelClient(connection_file=str(lab.runtime_dir / f"kernel-{kernel_id}.json"))
        self.client.load_connection_file()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=30)

    def run(self, code: str, timeout: float = 60) -> str:
        out = []

        def collect(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))

        reply = self.client.execute_interactive(code, timeout=timeout, output_hook=collect)
        assert reply["content"]["status"] == "ok", "".join(out)
        return "".join(out)

    def json(self, expression: str):
        return json.loads(self.run(f"import json as _json; print(_json.dumps({expression}))"))

    def close(self):
        """Disconnect and shut the kernel down."""
        self.client.stop_channels()
        self.lab.api(f"/api/sessions/{self.session_id}", method="DELETE")


def dismiss_dialogs(page) -> None:
    """Close any modal dialog (kernel choice, build notices) JupyterLab may show."""
    for _ in range(3):
        dialog = page.locator(".jp-Dialog")
        if not dialog.count():
            return
        accept = dialog.locator("button.jp-mod-accept")
        (accept.first.click() if accept.count() else page.keyboard.press("Escape"))
        time.sleep(0.2)


def open_notebook(lab: Lab, page, name: str, cells: list[str], ready: str, ui: str = "lab",
                  timeout: float = 120_000) -> Kernel:
    """Write a notebook of ``cells``, open it in JupyterLab (``ui="lab"``) or Notebook 7 (``"notebook"``),
    run all cells and wait for the selector ``ready``; return its :class:`Kernel`."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, lab.root / name)
    if ui == "lab":  # a fresh workspace per notebook, so JupyterLab does not reopen earlier notebooks
        page.goto(f"{lab.url}/lab/workspaces/{Path(name).stem}/tree/{name}?reset&token={lab.token}")
    else:
        page.goto(f"{lab.url}/notebooks/{name}?token={lab.token}")
    page.wait_for_function(
        "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel", timeout=60_000
    )
    dismiss_dialogs(page)
    page.evaluate("""async () => {
        const panel = window.jupyterapp.shell.currentWidget;
        await panel.context.ready;
        await panel.sessionContext.ready;
        window.jupyterapp.shell.collapseLeft?.();  // JupyterLab's file browser: room for the widgets
        await window.jupyterapp.commands.execute("notebook:run-all-cells");
    }""")
    page.wait_for_selector(ready, timeout=timeout)
    [session] = [s for s in lab.api("/api/sessions") if s["path"] == name]
    return Kernel(lab, session)


@contextlib.contextmanager
def notebook_page(lab: Lab, browser, name: str, cells: list[str], ready: str, viewport: dict):
    """A fresh browser page showing notebook ``name`` with ``cells`` run; yields ``(page, kernel)`` and closes both."""
    context = browser.new_context(viewport=viewport)
    kernel = open_notebook(lab, context.new_page(), name, cells, ready)
    try:
        yield context.pages[0], kernel
    finally:
        kernel.close()
        context.close()
