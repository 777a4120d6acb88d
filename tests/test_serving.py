"""Serving the classroom app to a class: the token, the working folder, writes confined to it."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import compresslab as cl
from compresslab import cli, serving


def test_confined_path_keeps_typed_paths_inside_the_folder(tmp_path):
    root = tmp_path / "ana"
    root.mkdir()
    assert serving.confined_path(root, "model.tflite") == (root / "model.tflite").resolve()
    assert serving.confined_path(root, "sub/dir/m.tflite") == (root / "sub" / "dir" / "m.tflite").resolve()
    assert serving.confined_path(root, str(root / "x.tflite")) == (root / "x.tflite").resolve()
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    for typed in ("../escape.tflite", "sub/../../escape.tflite", str(tmp_path / "outside" / "m.tflite"),
                  "/etc/passwd", "link/m.tflite", "~/m.tflite"):
        with pytest.raises(ValueError, match="is outside the folder this panel may write to") as caught:
            serving.confined_path(root, typed)
        assert str(root.resolve()) in str(caught.value)
    for typed in ("", "   ", "."):
        with pytest.raises(ValueError):
            serving.confined_path(root, typed)
    assert not (tmp_path / "escape.tflite").exists()


def test_work_folder_defaults_to_one_private_folder_per_user(tmp_path, monkeypatch):
    monkeypatch.setenv(serving.WORK_DIR_VARIABLE, str(tmp_path / "class" / "ana"))
    folder = serving.work_folder()
    assert folder == (tmp_path / "class" / "ana").resolve() and folder.is_dir()
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    monkeypatch.delenv(serving.WORK_DIR_VARIABLE)
    monkeypatch.setenv("COMPRESSLAB_HOME", str(tmp_path / "home"))
    assert serving.work_folder().parent == (tmp_path / "home" / "work").resolve()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        serving.work_folder(tmp_path / "afile")


def test_the_export_box_writes_only_inside_the_panel_folder(trained_student, small_digits, tmp_path):
    folder = tmp_path / "ana"
    panel = cl.widgets.QuantizationLab(trained_student, small_digits, export_dir=folder)
    panel.controls["ptq_dynamic"].click()
    assert panel.last_error is None, panel.last_error
    for typed in (str(tmp_path / "elsewhere" / "m.tflite"), "../../m.tflite"):
        panel.controls["export_path"].value = typed
        panel.controls["export"].click()
        assert isinstance(panel.last_error, ValueError) and "outside the folder" in panel.error_box.value
    assert not (tmp_path / "elsewhere").exists()  # no folder was created outside
    panel.controls["export_path"].value = "mine/model.tflite"
    panel.controls["export"].click()
    assert panel.last_error is None
    assert (folder / "mine" / "model.tflite").is_file()


def test_the_app_works_in_its_folder_and_locks_the_class_board(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPRESSLAB_CLASS_STORAGE", f"sqlite:///{tmp_path / 'teacher.db'}")
    app = cl.widgets.ClassroomApp(work_dir=tmp_path / "bo", baseline_options={"epochs": 1, "cache_dir": tmp_path,
                                                                           "progress": False})
    assert app.work_dir == (tmp_path / "bo").resolve()
    app.load()
    app.open_tab(0)
    assert app.panels["Quantize"].export_dir == app.work_dir / "exports"
    app.open_tab(3)
    box = app.panels["Compare"].class_submit
    assert box.controls["storage"].disabled
    box.controls["storage"].value = f"sqlite:///{tmp_path / 'attacker.db'}"  # a crafted widget message
    box.controls["study"].value = "lab"
    box.controls["submit"].click()
    assert not (tmp_path / "attacker.db").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _status(url: str) -> int:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        return opener.open(url, timeout=10).status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_token_is_required_by_the_real_voila_server(tmp_path):
    port = _free_port()
    command, environment = cli.app_command(None, port, True, token="classroom-token-42", work_dir=tmp_path / "w")
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=tmp_path, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}/"
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if _status(base + "?token=classroom-token-42") == 200:
                    break
            except OSError:
                pass
            time.sleep(1)
        else:
            pytest.fail("Voila did not start within 90 s")
        assert _status(base + "?token=classroom-token-42") == 200
        assert _status(base) in (302, 401, 403)  # to the login page, not the app
        assert _status(base + "?token=wrong-token-000") in (302, 401, 403)
        assert not any("classroom-token-42" in part for part in command)
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
    assert Path(environment["COMPRESSLAB_WORK_DIR"]).is_dir()
