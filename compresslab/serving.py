"""Serving the classroom app to a class: a token, a working folder per student, writes confined to it.

Owns :func:`work_folder` (where a student's app writes: ``COMPRESSLAB_WORK_DIR`` or a folder per OS
user under the data home), :func:`confined_path` (a path typed into a panel, resolved inside that
folder or refused) and :func:`voila_launch` (the Voila command and environment: the token travels in a
private config file, never on the command line where other users of the machine could read it).
See docs/serving-a-class.md.
"""

from __future__ import annotations

import getpass
import ipaddress
import json
import os
import tempfile
from pathlib import Path

from .data import default_data_home

WORK_DIR_VARIABLE = "COMPRESSLAB_WORK_DIR"
LOOPBACK = "127.0.0.1"


def work_folder(work_dir=None) -> Path:
    """The folder a student's app writes into (created, private to its owner).

    Args:
        work_dir: an explicit folder; default ``COMPRESSLAB_WORK_DIR``, else
            ``<data home>/work/<OS user name>``.
    """
    if work_dir is None:
        work_dir = os.environ.get(WORK_DIR_VARIABLE) or default_data_home() / "work" / _user()
    folder = Path(work_dir).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"the working folder {str(folder)!r} is a file; give a folder")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder.resolve()


def _user() -> str:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        name = f"uid{os.getuid()}" if hasattr(os, "getuid") else "user"
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "user"


def confined_path(folder, typed) -> Path:
    """The path a user typed, resolved inside ``folder``; anything that would land outside is refused.

    A relative path is taken inside the folder; an absolute one must already point inside it. ``..``
    parts and symbolic links are resolved first, so neither can lead out. Nothing is created here.

    Raises:
        ValueError: an empty path, or one that resolves outside ``folder`` (naming both).
    """
    root = Path(folder).expanduser().resolve()
    text = str(typed).strip()
    if not text:
        raise ValueError(f"the path is empty: type a file name inside {root}")
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        candidate = root / candidate
    resolved = candidate.resolve()
    if resolved != root and root not in resolved.parents:
        raise ValueError(f"{text!r} is outside the folder this panel may write to ({root}); "
                         "give a file name inside it, e.g. model.tflite or exports/model.tflite")
    if resolved == root:
        raise ValueError(f"{text!r} is the folder itself; give a file name inside {root}")
    return resolved


def _is_loopback(ip: str) -> bool:
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def voila_launch(voila: list[str], notebook: Path, *, port=None, no_browser=False, ip: str = LOOPBACK,
                 token: str | None = None, work_dir=None) -> tuple[list[str], dict]:
    """The Voila command line and environment that serve ``notebook``.

    Args:
        voila: how to start Voila (``["/path/to/voila"]`` or ``[python, "-m", "voila"]``).
        notebook: the app notebook.
        port: the port (Voila's default otherwise).
        no_browser: do not open a browser.
        ip: the address to listen on; anything but a loopback address needs a ``token``.
        token: visitors must open ``http://host:port/?token=TOKEN``; it is written to a private
            config file (mode 0600) that Voila reads, not put on the command line.
        work_dir: the working folder of the app (``COMPRESSLAB_WORK_DIR`` for its kernel).

    Raises:
        ValueError: serving beyond this machine without a token, or a token that is too short.
    """
    if token is not None and len(token) < 8:
        raise ValueError("the token is shorter than 8 characters; choose a longer one (e.g. from "
                         "python -c 'import secrets; print(secrets.token_urlsafe(16))')")
    if not _is_loopback(ip) and not token:
        raise ValueError(f"serving on {ip} lets other machines open the app; give a --token (visitors then open "
                         "http://HOST:PORT/?token=TOKEN), or serve on 127.0.0.1")
    command = [*voila, f"--Voila.ip={ip}"]
    if port is not None:
        command.append(f"--port={int(port)}")
    if no_browser:
        command.append("--no-browser")
    command.append(str(notebook))
    environment = dict(os.environ)
    if work_dir is not None:
        environment[WORK_DIR_VARIABLE] = str(work_folder(work_dir))
    if token:
        config_dir = Path(tempfile.mkdtemp(prefix="compresslab-voila-"))  # mode 0700: only its owner reads it
        handle = os.open(config_dir / "voila.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "w") as config:
            json.dump({"Voila": {"token": token}}, config)
        environment["JUPYTER_CONFIG_DIR"] = str(config_dir)
    return command, environment


__all__ = ["work_folder", "confined_path", "voila_launch", "WORK_DIR_VARIABLE"]
