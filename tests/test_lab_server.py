"""`make lab` starts a JupyterLab that answers on /lab with its token (started exactly as the README says)."""

import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_make_lab_serves_lab_page(tmp_path):
    port = _free_port()
    token = secrets.token_hex(16)
    env = {
        **os.environ,
        "HOME": str(tmp_path),  # no user settings leak in
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
    }
    args = (f"--no-browser --ip=127.0.0.1 --IdentityProvider.token={token} "
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate")
    log = open(tmp_path / "lab.log", "wb")
    server = subprocess.Popen(["make", "--no-print-directory", "lab", f"PORT={port}", f"LAB_ARGS={args}"],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        status = None
        # make lab first prepares the course baselines (make baselines): on a fresh clone it trains up to four.
        deadline = time.time() + 300
        while time.time() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=5) as response:
                    status = response.status
                    page = response.read().decode("utf-8", "replace")
                break
            except OSError:
                time.sleep(0.5)
        assert status == 200, (tmp_path / "lab.log").read_text(errors="replace")[-3000:]
        assert "JupyterLab" in page
        with pytest.raises(urllib.error.HTTPError):  # the token is really required
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token=wrong", timeout=5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
