"""Servers of the browser tests: JupyterLab (`make lab`) and Voila, isolated from user settings.

Everything a user's machine could leak in (settings, workspaces, kernels, extensions, the Jupyter
token) comes from throwaway folders: a fresh HOME, JUPYTER_CONFIG_DIR, JUPYTER_DATA_DIR and
JUPYTER_RUNTIME_DIR per server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from e2e_helpers import ARTIFACTS, REPO

STAMP = ".venv/.installed-stamp"

# Lab settings of the throwaway user-settings folder: no autosave (running a notebook must never
# write its outputs into the committed file), every cell in the DOM (JupyterLab otherwise renders
# only the cells near the viewport, and an error below the fold would go unseen), no news toast.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False,
    },
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server started as its own process group (make and its child), with its log on disk."""

    def __init__(self, name: str, command: list[str], env: dict, port: int, token: str, log_path: Path):
        self.name = name
        self.command = command
        self.port = port
        self.token = token
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def url(self, path: str) -> str:
        separator = "&" if "?" in path else "?"
        return f"{self.base_url}{path}{separator}token={self.token}" if self.token else f"{self.base_url}{path}"

    def wait_until_up(self, path: str, timeout: float, accept=(200,)) -> None:
        """Poll ``path`` until it answers a status in ``accept``; fail with the log when it dies or times out."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.process.returncode} before answering; "
                            f"command {' '.join(self.command)}\n--- log ---\n{self.log_tail()}")
            try:
                response = requests.get(self.url(path), timeout=5)
                if response.status_code in accept:
                    return
                last = f"HTTP {response.status_code}"
            except requests.RequestException as error:
                last = repr(error)
            time.sleep(0.5)
        self.stop()
        pytest.fail(f"{self.name} did not answer {path} within {timeout:.0f} s (last: {last})\n"
                    f"--- log ---\n{self.log_tail()}")

    def api(self, method: str, path: str, **kwargs):
        headers = {"Authorization": f"token {self.token}"} if self.token else {}
        return requests.request(method, f"{self.base_url}{path}", headers=headers, timeout=30, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGINT)  # jupyter shuts kernels down on SIGINT x2
                time.sleep(0.3)
                os.killpg(self.process.pid, signal.SIGINT)
                self.process.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=10)
        self._log.close()


def isolated_environment(root: Path, token: str) -> dict:
    """Environment of a server: throwaway HOME and Jupyter folders, the venv first on PATH."""
    folders = {name: root / name for name in ("home", "config", "data", "runtime", "ipython")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    settings = folders["config"] / "lab" / "user-settings"
    for relative, values in LAB_SETTINGS.items():
        path = settings / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    # Options `make lab` and `make app` do not pass on their command line: set through config
    # files, which both servers read from JUPYTER_CONFIG_DIR.
    server_config = {
        "ServerApp": {"ip": "127.0.0.1", "open_browser": False, "port_retries": 0},
        "IdentityProvider": {"token": token},
        "LabApp": {"check_for_updates_class": "jupyterlab.NeverCheckForUpdate", "open_browser": False},
    }
    (folders["config"] / "jupyter_server_config.json").write_text(json.dumps(server_config))
    voila_config = {"Voila": {"ip": "127.0.0.1", "open_browser": False, "port_retries": 0},
                    "VoilaConfiguration": {"show_tracebacks": True}}
    (folders["config"] / "voila.json").write_text(json.dumps(voila_config))

    env = {key: value for key, value in os.environ.items() if not key.startswith(("JUPYTER", "JPY"))}
    env.update(
        HOME=str(folders["home"]),
        JUPYTER_CONFIG_DIR=str(folders["config"]),
        JUPYTER_DATA_DIR=str(folders["data"]),
        JUPYTER_RUNTIME_DIR=str(folders["runtime"]),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(folders["config"] / "lab" / "workspaces"),
        IPYTHONDIR=str(folders["ipython"]),
        PATH=f"{REPO / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        BROWSER="true",  # belt and braces: should a server still try to open a browser, run /bin/true
    )
    env.pop("MAKEFLAGS", None)  # run.sh may be called from make: do not inherit its flags
    env.pop("MAKELEVEL", None)
    env.pop("MFLAGS", None)
    return env


def start_server(name: str, command: list[str], root: Path, *, token: str, ready_path: str,
                 timeout: float, accept=(200,), log_name: str) -> Server:
    """Start ``command`` (``{port}`` is replaced) with throwaway settings; wait until it answers."""
    env = isolated_environment(root, token)
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    ARTIFACTS.mkdir(exist_ok=True)
    server = Server(name, command, env, port, token, ARTIFACTS / log_name)
    server.wait_until_up(ready_path, timeout, accept=accept)
    return server


def make_command(target: str) -> list[str]:
    """``make <target> PORT={port}``; ``-o`` keeps make from reinstalling the venv (no network here:
    the suite runs after ``make test`` installed it)."""
    if shutil.which("make") is None:
        pytest.fail("make is not installed; the browser tests start JupyterLab with `make lab`")
    return ["make", "--no-print-directory", "-o", STAMP, target, "PORT={port}"]


# `make app` runs `voila $(ROOT_FLAG) ... notebooks/app.ipynb`; Voila has no --allow-root (it
# runs as root without it) and exits on that flag, so the app fixture runs the same command
# without it. test_make_targets.py checks `make app` itself.
VOILA_COMMAND = [str(REPO / ".venv" / "bin" / "voila"), "--port={port}", "notebooks/app.ipynb"]
