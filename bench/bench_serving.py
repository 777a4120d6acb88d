"""Classroom serving benchmark: one app kernel's memory, and N concurrent Voila sessions of the app.

Prints one JSON object (and saves it to bench/results/bench_serving.json):

- ``kernel``: a fresh Python process does what one student's app kernel does: import compresslab,
  build ``ClassroomApp`` on digits and Load, then one action per tab (Quantize: PTQ dynamic; Prune:
  sparsity 80% and "Add this pruned model"; Distill: train both students for 2 epochs; Compare; Export
  my results). Its resident memory (RSS) and proportional share (PSS: shared libraries split between
  the processes that map them) after each step, with the step's time.
- ``voila``: ``compresslab app`` (the project's own launch: :func:`compresslab.cli.app_command`, with a
  token and a work folder) serving notebooks/app.ipynb, then N sessions opened at once with HTTP
  requests. Voila executes the notebook for each request and streams the page, so the time to the end
  of the response is the time until the app's widgets are in the page (the browser then draws them).
  Memory of the server and of every kernel, RSS and PSS, with the server alone as the reference.
- ``machine``: CPUs, memory, and the load average at the start, between the parts and at the end: the
  reference the times are read against (other work on the machine slows every figure here).
- ``sizing``: memory per student and what a class of 40 needs, derived from the figures above.

    python bench/bench_serving.py [--sessions 5]
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from _common import REPO, emit, log, machine, parse_args

CLASS_SIZE = 40

# One student's kernel, step by step. Runs in its own process so that its memory is a kernel's alone.
KERNEL_SCRIPT = textwrap.dedent("""
    import json, sys, time
    def report(step, started):
        fields = dict(line.split(":")[:2] for line in open("/proc/self/smaps_rollup").read().splitlines()[1:])
        print(json.dumps({"step": step, "seconds": round(time.perf_counter() - started, 2),
                          "rss_mb": round(int(fields["Rss"].split()[0]) / 1024, 1),
                          "pss_mb": round(int(fields["Pss"].split()[0]) / 1024, 1)}), flush=True)
    def errors(*panels):
        found = [repr(p.last_error) for p in panels if p is not None and p.last_error is not None]
        if found:
            raise SystemExit(f"a panel reported an error: {found}")
    started = time.perf_counter()
    import compresslab as cl
    report("import compresslab (TensorFlow)", started)
    started = time.perf_counter()
    app = cl.widgets.ClassroomApp(work_dir=sys.argv[1])
    app.load()
    report("ClassroomApp built, Load (digits, seed_cnn; opens Quantize)", started)
    started = time.perf_counter()
    quantize = app.panels["Quantize"]
    quantize.controls["ptq_dynamic"].click()
    errors(app, quantize)
    report("Quantize: PTQ dynamic", started)
    started = time.perf_counter()
    app.tabs.selected_index = 1
    app.panels["Prune"].controls["sparsity"].value = 0.8
    app.controls["add_pruned"].click()
    errors(app, app.panels["Prune"])
    report("Prune: sparsity 80%, Add this pruned model", started)
    started = time.perf_counter()
    app.tabs.selected_index = 2
    distill = app.panels["Distill"]
    distill.controls["epochs"].value = 2
    distill.controls["run"].click()
    errors(app, distill)
    report("Distill: train both students (2 epochs)", started)
    started = time.perf_counter()
    app.tabs.selected_index = 3
    errors(app)
    report("Compare: board of every variant", started)
    started = time.perf_counter()
    app.export_box.controls["export"].click()
    errors(app.export_box)
    report("Export my results", started)
""")


def load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def kernel_steps(folder: Path) -> list[dict]:
    """Run one student's kernel in a fresh process; its memory after every step."""
    result = subprocess.run([sys.executable, "-c", KERNEL_SCRIPT, str(folder / "kernel-work")], cwd=REPO,
                            capture_output=True, text=True, timeout=1800)
    if result.returncode:
        raise SystemExit(f"the kernel script failed:\n{result.stderr[-3000:]}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def proc_memory(pid: int) -> tuple[float, float]:
    """RSS and PSS of a process in MB, from /proc (PSS splits shared pages between their users)."""
    lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    fields = {name: int(value.split()[0]) for name, value in (line.split(":", 1) for line in lines)}
    return round(fields["Rss"] / 1024, 1), round(fields["Pss"] / 1024, 1)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (a Voila server's kernels), from the parent ids in /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:  # the command may hold spaces or parentheses: the parent id follows the last ")"
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def tree_memory(pid: int) -> dict:
    """RSS and PSS of a process and of each of its descendants (the kernels of a Voila server)."""
    rows = []
    for process in [pid, *descendants(pid)]:
        try:
            rss, pss = proc_memory(process)
            command = Path(f"/proc/{process}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:  # it ended meanwhile
            continue
        rows.append({"pid": process, "kernel": b"ipykernel" in command, "rss_mb": rss, "pss_mb": pss})
    kernels = [row for row in rows if row["kernel"]]
    return {"processes": len(rows), "kernels": len(kernels),
            "total_rss_mb": round(sum(row["rss_mb"] for row in rows), 1),
            "total_pss_mb": round(sum(row["pss_mb"] for row in rows), 1),
            "kernel_pss_mb": [row["pss_mb"] for row in kernels],
            "kernel_rss_mb": [row["rss_mb"] for row in kernels]}


def open_session(url: str) -> dict:
    """One visitor opening the app: time to the first byte and to the end of the executed page."""
    started = time.perf_counter()
    first, body = None, b""
    with requests.get(url, stream=True, timeout=900) as response:
        for chunk in response.iter_content(chunk_size=65536):
            first = first if first is not None else time.perf_counter() - started
            body += chunk
    elapsed = time.perf_counter() - started
    # the app's view in the page, and no error box from Voila's cell execution
    rendered = response.status_code == 200 and b"application/vnd.jupyter.widget-view+json" in body
    return {"status": response.status_code, "first_byte_s": round(first or elapsed, 2),
            "page_done_s": round(elapsed, 2), "bytes": len(body), "app_view_in_page": rendered,
            "traceback_in_page": b"Traceback" in body}


def voila_sessions(folder: Path, sessions: int) -> dict:
    from compresslab.cli import app_command

    token = secrets.token_urlsafe(16)
    port = free_port()
    command, environment = app_command(port=port, no_browser=True, token=token, work_dir=folder / "voila-work")
    runtime = folder / "jupyter-runtime"
    runtime.mkdir()
    environment.update(JUPYTER_RUNTIME_DIR=str(runtime), PYTHONUNBUFFERED="1")
    server_log = folder / "voila.log"
    with open(server_log, "wb") as output:
        server = subprocess.Popen(command, cwd=REPO, env=environment, stdout=output, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:  # any HTTP answer means the server is up; a missing page starts no kernel
            try:
                requests.get(f"{base}/no-such-page?token={token}", timeout=5)
                break
            except requests.RequestException:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"Voila did not start:\n{server_log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        alone = tree_memory(server.pid)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=sessions) as pool:
            visits = list(pool.map(open_session, [f"{base}/?token={token}"] * sessions))
        wall = time.perf_counter() - started
        time.sleep(2)
        loaded = tree_memory(server.pid)
        log_text = server_log.read_text(errors="replace")
        return {"command": " ".join(command), "sessions": sessions, "wall_s": round(wall, 2), "visits": visits,
                "server_alone": alone, "with_sessions": loaded,
                "errors_in_log": log_text.count("Traceback"), "token_in_log": token in log_text}
    finally:
        try:  # our own server's process group: SIGINT twice is Jupyter's clean shutdown
            os.killpg(server.pid, signal.SIGINT)
            time.sleep(0.3)
            os.killpg(server.pid, signal.SIGINT)
            server.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


def sizing(kernel: list[dict], voila: dict) -> dict:
    """Memory per student and for a class, estimated from the measured figures.

    With n kernels mapping the same libraries, RSS = private + shared and PSS ~ private + shared / n,
    so shared ~ (RSS - PSS) * n / (n - 1): counted once for the class. What a student's actions add
    after Load (the lone kernel's RSS growth) is private to their kernel.
    """
    sessions = voila["sessions"]
    rss = sum(voila["with_sessions"]["kernel_rss_mb"]) / sessions
    pss = sum(voila["with_sessions"]["kernel_pss_mb"]) / sessions
    shared = (rss - pss) * sessions / max(1, sessions - 1)
    private = rss - shared
    growth = max(0.0, kernel[-1]["rss_mb"] - kernel[1]["rss_mb"])
    server = voila["server_alone"]["total_pss_mb"]
    return {"kernel_private_at_first_render_mb": round(private, 1), "kernel_shared_mb": round(shared, 1),
            "growth_after_every_tab_mb": round(growth, 1), "per_student_mb": round(private + growth, 1),
            "server_mb": round(server, 1),
            f"class_of_{CLASS_SIZE}_gb": round((server + shared + CLASS_SIZE * (private + growth)) / 1024, 1),
            "cpu_seconds_per_first_render_at_most": round(voila["wall_s"] * (os.cpu_count() or 1) / sessions, 1)}


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], extra=lambda parser: parser.add_argument(
        "--sessions", type=int, default=5, help="concurrent app sessions (default 5)"))
    meminfo = {line.split(":")[0]: int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()}
    payload = {"machine": {**machine(), "memory_gb": round(meminfo["MemTotal"] / 2**20, 1),
                           "available_gb_at_start": round(meminfo["MemAvailable"] / 2**20, 1),
                           "load_at_start": load()}}
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as scratch:
        folder = Path(scratch)
        log("one student's kernel, step by step")
        payload["kernel"] = kernel_steps(folder)
        payload["machine"]["load_between"] = load()
        log(f"{args.sessions} concurrent Voila sessions")
        payload["voila"] = voila_sessions(folder, args.sessions)
    payload["machine"]["load_at_end"] = load()
    payload["sizing"] = sizing(payload["kernel"], payload["voila"])
    emit("bench_serving", payload, args.out)


if __name__ == "__main__":
    main()
