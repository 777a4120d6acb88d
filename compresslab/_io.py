"""Safe file writing: atomic single files, consistent sets of files, and OS file locks.

A reader (or a crash) never sees a half-written file: content goes to a hidden temporary
file in the same folder (``.<name>.cl-<pid>-<token>.part``), is fsync'd, then renamed over
the target. The final file gets the permissions of a normal new file (``0o666`` minus the
user's umask), not the private ``0o600`` of a temporary file, so colleagues on a shared machine
can read reports and ``.cldc`` files.

A writer killed with SIGKILL cannot remove its own temporary file. Every later write to the
same folder therefore sweeps: temporary files whose writer process is gone (same machine) or
that are older than :data:`STALE_SECONDS` are removed, and a set of files whose renames were
cut short is finished first (see :func:`atomic_write_many`).

Example:
    >>> atomic_write("out/report.html", html)
    >>> run_id, paths = atomic_write_many({"r.html": html, "r.csv": csv}, run_id=run_id)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; single-writer use stays safe
    fcntl = None

# A temporary file this old is a leftover even when its writer's pid looks alive (pid reuse,
# another machine on a shared folder): no single write of ours takes a minute between writes.
STALE_SECONDS = 60.0

_PART_MARK = ".cl-"
_PART_SUFFIX = ".part"
_SET_SUFFIX = ".cl-set.json"


def new_run_id() -> str:
    """A short unique id (UTC time + random) naming one write of a set of files.

    Example:
        >>> new_run_id()
        '20250101T120000Z-3f2a9c1b'
    """
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


def _target(path) -> Path:
    """``path`` as a Path whose folder exists; a clear error when it cannot be a file."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"a file path must be a str or Path, got {type(path).__name__} {path!r}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the path of a file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(f"cannot write {path}: a part of {path.parent} is a file, not a folder") from None
    return path


def _to_bytes(content: bytes | str) -> bytes:
    if isinstance(content, str):
        return content.encode("utf-8")
    if isinstance(content, (bytes, bytearray, memoryview)):
        return bytes(content)
    raise TypeError(f"file content must be bytes or str, got {type(content).__name__}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable: fsync the folder entry (a no-op where folders cannot be opened)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _write_temp(path: Path, data: bytes) -> Path:
    """Write ``data`` to a new fsync'd temporary file beside ``path``; return its path."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}{_PART_MARK}{os.getpid()}-{secrets.token_hex(6)}{_PART_SUFFIX}"
        try:
            # 0o666 through os.open lets the kernel apply the umask, as for any new file
            handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 48 random bits colliding 100 times
        raise OSError(f"could not create a temporary file beside {path}")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _owner_gone(pid: int, host: str | None) -> bool:
    return (host in (None, socket.gethostname())) and not _pid_alive(pid)


def _part_pid(name: str) -> int | None:
    try:
        return int(name.rsplit(_PART_MARK, 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return None


def sweep(folder: str | os.PathLike) -> dict[str, int]:
    """Finish interrupted sets of files and remove leftover temporary files in ``folder``.

    Runs before every write; call it yourself to tidy a folder nobody writes to any more.

    Returns:
        ``{"sets_finished": n, "parts_removed": m}``.

    Example:
        >>> sweep("reports")
        {'sets_finished': 0, 'parts_removed': 0}
    """
    folder = Path(folder)
    finished = removed = 0
    live_parts: set[str] = set()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return {"sets_finished": 0, "parts_removed": 0}
    for entry in entries:
        if not entry.name.endswith(_SET_SUFFIX):
            continue
        try:
            journal = json.loads(Path(entry.path).read_text())
            pairs, pid, host = journal["pairs"], int(journal["pid"]), journal.get("host")
        except (OSError, ValueError, KeyError, TypeError):
            continue  # half-written journal: its writer never started renaming, parts get swept
        if not _owner_gone(pid, host):
            live_parts.update(Path(tmp).name for tmp, _ in pairs)
            continue
        # the writer died after every temporary file was complete: finish its renames
        for tmp, final in pairs:
            with contextlib.suppress(FileNotFoundError):
                os.replace(folder / tmp, folder / final)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)
        finished += 1
    now = time.time()
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and _PART_MARK in name and name.endswith(_PART_SUFFIX)):
            continue
        if name in live_parts:
            continue
        pid = _part_pid(name)
        try:
            age = now - entry.stat().st_mtime
        except FileNotFoundError:
            continue
        if (pid is not None and _owner_gone(pid, None)) or age > STALE_SECONDS:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
    if finished:
        _fsync_folder(folder)
    return {"sets_finished": finished, "parts_removed": removed}


def atomic_write(path: str | os.PathLike, content: bytes | str) -> Path:
    """Write ``content`` to ``path`` through a temporary file in the same folder, then rename it.

    The temporary file is fsync'd before the rename, and removed if anything fails, so ``path``
    holds either its old content or all of the new. The final file has the permissions of a new
    file under the user's umask. Leftovers of killed writers in the folder are swept first.

    Args:
        path: the target file; missing parent folders are created.
        content: ``bytes``, or ``str`` (written as UTF-8).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> atomic_write("out/model.cldc", blob)
    """
    path = _target(path)
    data = _to_bytes(content)
    sweep(path.parent)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def atomic_write_many(files: Mapping[str | os.PathLike, bytes | str], *,
                      run_id: str | None = None) -> tuple[str, list[Path]]:
    """Write several files in one folder as one consistent set (e.g. a report's HTML, CSV and JSON).

    Every file's content is written to a temporary file and fsync'd first; then a journal listing
    the renames is written, the renames happen, and the journal is deleted. A writer killed
    before the journal leaves every target as it was (its temporary files are swept later); a
    writer killed during the renames leaves a journal that the next write to the folder (or
    :func:`sweep`) replays, so the targets never stay a mix of two runs.

    Args:
        files: target path -> content (``bytes`` or ``str``). All targets must share one folder.
        run_id: the id embedded by the caller in the contents, so readers can check that the
            files belong together; a new one from :func:`new_run_id` when None.

    Returns:
        ``(run_id, paths)``: the run id and the target paths in the order given.

    Raises:
        ValueError: no files, or targets in different folders.

    Example:
        >>> run_id = new_run_id()
        >>> atomic_write_many({"r.html": html_with(run_id), "r.csv": csv_with(run_id)}, run_id=run_id)
    """
    paths = [_target(p) for p in files]
    if not paths:
        raise ValueError("atomic_write_many needs at least one file")
    folders = {p.parent.resolve() for p in paths}
    if len(folders) != 1:
        raise ValueError(f"atomic_write_many writes one folder at a time; got files in {sorted(map(str, folders))}")
    if len({p.name for p in paths}) != len(paths):
        raise ValueError(f"atomic_write_many got the same file twice: {[str(p) for p in paths]}")
    run_id = run_id or new_run_id()
    payloads = [_to_bytes(content) for content in files.values()]
    folder = paths[0].parent
    sweep(folder)
    temps: list[Path] = []
    journal = folder / f".{run_id}-{secrets.token_hex(4)}{_SET_SUFFIX}"
    try:
        for path, data in zip(paths, payloads):
            temps.append(_write_temp(path, data))
        record = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
                  "pairs": [[t.name, p.name] for t, p in zip(temps, paths)]}
        os.replace(_write_temp(journal, json.dumps(record).encode()), journal)
        _fsync_folder(folder)
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        journal.unlink(missing_ok=True)
        raise
    for tmp, path in zip(temps, paths):
        os.replace(tmp, path)
    _fsync_folder(folder)
    journal.unlink(missing_ok=True)
    return run_id, paths


@contextlib.contextmanager
def locked(handle, *, exclusive: bool = True) -> Iterator[None]:
    """Hold an OS advisory lock (``flock``) on an open file for the ``with`` block.

    Exclusive for writers, shared for readers; the OS releases it if the process dies, so a
    killed writer never leaves the file locked. Without ``fcntl`` (Windows) it does nothing.

    Example:
        >>> with open(log_path, "ab") as handle, locked(handle):
        ...     handle.write(line)
    """
    if fcntl is None:
        yield
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    try:
        yield
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


__all__ = ["atomic_write", "atomic_write_many", "new_run_id", "sweep", "locked", "STALE_SECONDS"]
