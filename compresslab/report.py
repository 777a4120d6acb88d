"""Reports a person can send: one self-contained HTML file, plus CSV and JSON beside it.

The HTML embeds plotly.js, so it opens offline, and holds the tradeoff chart, the table of
every variant, each variant's spec, the data sets and the environment (library versions and
machine). Every name and spec in the HTML is escaped: a model named
``<script>alert(1)</script>`` shows as text and runs nothing.

Example:
    >>> paths = write_report("runs/sweep.jsonl", "report.html", title="MNIST compression")
    >>> paths["csv"], paths["json"]
"""

from __future__ import annotations

import html
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from ._io import atomic_write_many, new_run_id
from .records import Record, load_records, to_frame

# Columns of the HTML table, in order, with their headings.
TABLE_COLUMNS = {
    "name": "name",
    "technique": "technique",
    "dataset": "data set",
    "accuracy_pct": "accuracy %",
    "accuracy_backend": "measured by",
    "params": "params",
    "nonzero_params": "non-zero",
    "dense_float32_bytes": "dense float32 B",
    "tflite_bytes": "TFLite B",
    "gzip_bytes": "gzip B",
    "extra.compressed_bytes": "compressed file B",
    "size_bytes": "smallest file B",
    "ratio": "x smaller",
    "reference": "against",
    "latency_ms": "latency ms",
}


def environment() -> dict:
    """Library versions and the machine a report's figures were measured on."""
    from ._keras import versions

    return {
        "versions": versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
    }


def _records(log_or_records) -> list[Record]:
    try:
        records = load_records(log_or_records)
    except ValueError as error:
        raise ValueError(f"cannot write a report: {error}") from None
    except TypeError:
        raise ValueError(f"cannot write a report from a {type(log_or_records).__name__}; pass an experiment log "
                         "path, an ExperimentLog or a list of Records") from None
    if not records:
        raise ValueError(f"cannot write a report: {log_or_records!s} holds no records (run an experiment "
                         "that appends to the log first)")
    return records


def report_frame(records):
    """The DataFrame a report shows: :func:`to_frame` plus the smallest file and its ratio."""
    from .sizes import size_column

    frame = to_frame(records)
    sizes, sources = size_column(frame, "smallest")
    frame["size_bytes"] = sizes
    frame["size_source"] = sources
    # One reference per variant: the model it came from (a distilled student's teacher), not its own count.
    frame["ratio"] = [
        (reference / size if reference and size else None)
        for reference, size in zip(frame["ratio_reference_bytes"], frame["size_bytes"])
    ]
    return frame


def _cell(value, column: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "&ndash;"
    if column == "accuracy_pct":
        return f"{value:.2f}"
    if column == "ratio":
        return f"{value:.1f}"
    if column == "latency_ms":
        return f"{value:.3f}"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def _table(frame) -> str:
    columns = [c for c in TABLE_COLUMNS if c in frame.columns and frame[c].notna().any()]
    head = "".join(f"<th>{html.escape(TABLE_COLUMNS[c])}</th>" for c in columns)
    rows = []
    for _, row in frame.iterrows():
        cells = "".join(f"<td>{_cell(row[c], c)}</td>" for c in columns)
        rows.append(f"<tr>{cells}</tr>")
    return f'<table class="records"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _specs(frame) -> str:
    items = []
    for _, row in frame.iterrows():
        spec = json.dumps(row["spec"] or {}, indent=2, sort_keys=True, default=str)
        extra = {k[len("extra."):]: row[k] for k in frame.columns
                 if k.startswith("extra.") and row[k] is not None and row[k] == row[k]}
        extra_text = json.dumps(extra, indent=2, sort_keys=True, default=str) if extra else ""
        items.append(
            f"<details><summary><b>{html.escape(str(row['name']))}</b> "
            f"({html.escape(str(row['technique']))}, seed {html.escape(str(row['seed']))}, "
            f"{html.escape(str(row['timestamp']))})</summary>"
            f"<pre>{html.escape(spec)}</pre>"
            + (f"<p>further figures</p><pre>{html.escape(extra_text)}</pre>" if extra_text else "")
            + "</details>"
        )
    return "\n".join(items)


def _datasets(frame, data) -> str:
    counts = frame["dataset"].fillna("").value_counts()
    lines = [f"<li><b>{html.escape(name or 'unnamed')}</b>: {count} variant(s)</li>" for name, count in counts.items()]
    described = ""
    for dataset in ([data] if data is not None and not isinstance(data, (list, tuple)) else list(data or [])):
        described += f"<pre>{html.escape(dataset.describe())}</pre>"
    return f"<ul>{''.join(lines)}</ul>{described}"


def _environment_html(env: dict) -> str:
    rows = [f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in env["versions"].items()]
    for key in ("python", "platform", "machine", "processor", "cpu_count"):
        rows.append(f"<tr><th>{html.escape(key)}</th><td>{html.escape(str(env[key]))}</td></tr>")
    return f'<table class="env">{"".join(rows)}</table>'


def _summary(frame) -> str:
    measured = frame[frame["accuracy"].notna() & frame["size_bytes"].notna()]
    if measured.empty:
        return "<p>No variant has both an accuracy and a size.</p>"
    best = measured.loc[measured["accuracy"].idxmax()]
    smallest = measured.loc[measured["size_bytes"].idxmin()]
    baseline = measured[measured["technique"] == "baseline"]
    lines = [
        f"<li>{len(frame)} variant(s), {frame['technique'].nunique()} technique(s).</li>",
        f"<li>Most accurate: <b>{html.escape(str(best['name']))}</b>, {100 * best['accuracy']:.2f}% at "
        f"{best['size_bytes']:,.0f} bytes.</li>",
        f"<li>Smallest: <b>{html.escape(str(smallest['name']))}</b>, {smallest['size_bytes']:,.0f} bytes at "
        f"{100 * smallest['accuracy']:.2f}%.</li>",
    ]
    if not baseline.empty:
        reference = baseline.iloc[0]
        lines.append(f"<li>Baseline <b>{html.escape(str(reference['name']))}</b>: "
                     f"{100 * reference['accuracy']:.2f}%, dense float32 "
                     f"{reference['dense_float32_bytes']:,.0f} bytes.</li>")
    return f"<ul>{''.join(lines)}</ul>"


_STYLE = """
body{font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px;
color:#212121;padding:0 16px}
h1{margin-bottom:4px} .meta{color:#616161;margin-top:0}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #e0e0e0;padding:4px 8px;text-align:right}
th{background:#f5f5f5} td:first-child,td:nth-child(2),td:nth-child(3),td:nth-child(5){text-align:left}
table.env th,table.env td{text-align:left}
pre{background:#fafafa;border:1px solid #eee;padding:8px;overflow:auto;font-size:12px}
details{margin:4px 0} .note{color:#616161;font-size:13px}
"""


def render_html(records, *, title: str = "compresslab report", data=None, env: dict | None = None) -> str:
    """The report as one HTML string (plotly.js embedded). See :func:`write_report`."""
    from .plots.tradeoff import fig_tradeoff

    records = list(records)
    frame = report_frame(records)
    env = env or environment()
    figure = fig_tradeoff(frame, title="Size against accuracy", height=480)
    chart = figure.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False})
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    safe_title = html.escape(str(title))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{safe_title}</title><style>{_STYLE}</style></head>
<body>
<h1>{safe_title}</h1>
<p class="meta">Generated {generated} by compresslab {html.escape(env['versions'].get('compresslab', ''))}.
Accuracy is top-1 on each data set's held-out test split; sizes are real bytes of files
(every "x smaller" is against the dense float32 size, 4 bytes per parameter, of the model the variant came
from: a distilled student's teacher, named under "against"; otherwise the variant's own parameters).</p>
<h2>Summary</h2>{_summary(frame)}
<h2>Size against accuracy</h2>
<p class="note">Each point is a variant, plotted at the smallest file measured for it; the dotted line is the
Pareto front (no other variant is both smaller and more accurate). Hover a point for its spec.</p>
{chart}
<h2>Every variant</h2>{_table(frame)}
<h2>Specs</h2>{_specs(frame)}
<h2>Data sets</h2>{_datasets(frame, data)}
<h2>Environment</h2>{_environment_html(env)}
</body></html>
"""


def write_report(log_or_records, path, *, title: str = "compresslab report", data=None) -> dict[str, Path]:
    """Write one self-contained HTML report, and CSV and JSON files beside it.

    Args:
        log_or_records: an experiment log path, an :class:`~compresslab.ExperimentLog` or Records.
        path: the HTML file to write (``.html`` is added when missing); ``<stem>.csv`` and
            ``<stem>.json`` are written next to it.
        title: the report's title (escaped).
        data: optional :class:`~compresslab.Dataset` (or list of them) described in the report.

    Returns:
        ``{"html": Path, "csv": Path, "json": Path}``.

    Raises:
        ValueError: the log does not exist, is corrupt, or holds no records.

    Example:
        >>> write_report("runs/sweep.jsonl", "report.html", title="seed_cnn on MNIST")["html"]
        PosixPath('report.html')
    """
    records = _records(log_or_records)
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        path = path.with_name(path.name + ".html")
    if path.exists() and path.is_dir():
        raise ValueError(f"{path} is a folder; give the report's file name, e.g. report.html")
    env = environment()
    text = render_html(records, title=title, data=data, env=env)
    frame = report_frame(records)
    csv_frame = frame.drop(columns=["spec"])
    csv_path = path.with_suffix(".csv")
    json_path = path.with_suffix(".json")
    # One run id in all three files, written as one set: a kill never leaves files of two runs.
    run_id = new_run_id()
    payload = {"title": str(title), "generated": datetime.now(UTC).isoformat(timespec="seconds"),
               "run_id": run_id, "environment": env, "records": [record.to_dict() for record in records]}
    marker = f'<meta name="compresslab-run" content="{run_id}">'
    text = text.replace("<head>", "<head>" + marker, 1) if "<head>" in text else marker + text
    csv_frame = csv_frame.assign(run_id=run_id)
    atomic_write_many({path: text, csv_path: csv_frame.to_csv(index=False),
                       json_path: json.dumps(payload, indent=2, sort_keys=True, default=str)}, run_id=run_id)
    return {"html": path, "csv": csv_path, "json": json_path}


__all__ = ["write_report", "render_html", "report_frame", "environment"]
