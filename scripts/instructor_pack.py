"""Build the instructor pack: printable handouts of the solution notebooks and the lesson plans as HTML.

Owns ``make instructor``. Writes, into OUT (default build/instructor):

- ``handouts/NN_name.html``: the solution edition of each notebook (scripts/solutions.py), executed
  here and exported to static HTML. Plotly charts are drawn from plotly.js embedded once per page,
  so a handout opens offline and prints; each interactive panel becomes a static copy of its state
  (its charts, tables, messages and control values) under a note saying so.
- ``lessons/NN_name.html``: instructor/lessons/*.md rendered with mistune (nbconvert's own Markdown
  library: nothing new to install).
- ``index.html``: links to both.

The pack is built in a temporary folder beside OUT and renamed into place at the end: a failed
build (a notebook that raises, say) leaves the previous pack as it was.

    python scripts/instructor_pack.py [OUT] [--notebooks 00_start_here.ipynb ...] [--timeout 900]
"""

from __future__ import annotations

import argparse
import html
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "instructor" / "lessons"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from solutions import build as build_solutions  # noqa: E402 - scripts/solutions.py, the one source of answers

PLOTLY = "application/vnd.plotly.v1+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PANEL_NOTE = ("Static copy of an interactive panel, as it stood when this handout was built: open the notebook "
              "in JupyterLab (or the classroom app) to move its controls.")
_CHOICE_WIDGETS = {"DropdownModel", "ToggleButtonsModel", "RadioButtonsModel", "SelectModel", "SelectionSliderModel"}
_VALUE_WIDGETS = {"IntSliderModel", "FloatSliderModel", "FloatLogSliderModel", "CheckboxModel", "TextModel",
                  "BoundedIntTextModel", "BoundedFloatTextModel", "IntTextModel", "FloatTextModel",
                  "IntRangeSliderModel", "FloatRangeSliderModel", "ToggleButtonModel"}
PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 0.8rem 0; }}
th, td {{ border: 1px solid #bbb; padding: 0.25rem 0.5rem; vertical-align: top; text-align: left; }}
code, pre {{ background: #f4f4f4; }} pre {{ padding: 0.5rem; overflow-x: auto; }}
blockquote {{ border-left: 4px solid #bbb; margin-left: 0; padding-left: 1rem; color: #333; }}
@media print {{ body {{ max-width: none; margin: 0; }} a {{ color: inherit; }} }}
</style></head><body>
{body}
</body></html>
"""


class _Plotly:
    """Turns plotly figure JSON into HTML; the first figure of a page carries plotly.js itself."""

    def __init__(self):
        self.embedded = False

    def html(self, figure_json: dict) -> str:
        import plotly.graph_objects as go

        figure = go.Figure(figure_json)
        text = figure.to_html(full_html=False, include_plotlyjs=not self.embedded,
                              config={"displaylogo": False, "responsive": True})
        self.embedded = True
        return text


def _output_html(output: dict, state: dict, plotly: _Plotly) -> str:
    """One output (of a cell or of an Output widget) as static HTML."""
    data = output.get("data", {})
    if output.get("output_type") == "stream":
        return f"<pre>{html.escape(''.join(output.get('text', '')))}</pre>"
    if PLOTLY in data:
        return plotly.html(data[PLOTLY])
    if WIDGET_VIEW in data:
        return _widget_html(data[WIDGET_VIEW]["model_id"], state, plotly)
    if "text/html" in data:
        return "".join(data["text/html"])
    if "image/png" in data:
        return f'<img src="data:image/png;base64,{"".join(data["image/png"]).strip()}">'
    if "text/plain" in data:
        return f"<pre>{html.escape(''.join(data['text/plain']))}</pre>"
    return ""


def _widget_html(model_id: str, state: dict, plotly: _Plotly) -> str:
    """A widget's saved state as static HTML: containers walked in order, leaves shown as they stood."""
    model = state.get(model_id)
    if model is None:
        return ""
    name, values = model["model_name"], model["state"]

    def child(ref) -> str:
        return _widget_html(str(ref).removeprefix("IPY_MODEL_"), state, plotly)

    if name in ("VBoxModel", "BoxModel", "GridBoxModel", "HBoxModel", "AccordionModel", "TabModel"):
        titles = values.get("titles") or []
        parts = []
        for index, ref in enumerate(values.get("children", [])):
            title = titles[index] if index < len(titles) and titles[index] else None
            inner = child(ref)
            if inner:
                parts.append((f"<h4>{html.escape(title)}</h4>" if title else "") + inner)
        tag = "display:flex;flex-wrap:wrap;gap:0.3rem 1.2rem;align-items:center" if name == "HBoxModel" else ""
        return f'<div style="{tag}">' + "".join(parts) + "</div>" if parts else ""
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<div>{values['value']}</div>" if values.get("value") else ""
    if name == "LabelModel":
        return f"<div>{html.escape(str(values.get('value', '')))}</div>" if values.get("value") else ""
    if name == "OutputModel":
        return "".join(_output_html(output, state, plotly) for output in values.get("outputs", []))
    if name == "AnyModel" and "fig_data" in values:  # a panel chart (compresslab's LiveFigure)
        layout = {**values.get("fig_layout", {}), "template": values.get("fig_template", {})}
        return plotly.html({"data": values.get("fig_data", []), "layout": layout})
    if name == "AnyModel" and "_widget_data" in values:  # a plotly FigureWidget, should a notebook use one
        return plotly.html({"data": values.get("_widget_data", []), "layout": values.get("_widget_layout", {})})
    label = html.escape(str(values.get("description") or ""))
    if name in _CHOICE_WIDGETS and values.get("index") is not None:
        shown = values.get("_options_labels", [])[values["index"]]
    elif name == "SelectMultipleModel":
        shown = ", ".join(values.get("_options_labels", [])[i] for i in values.get("index", []))
    elif name in _VALUE_WIDGETS:
        shown = values.get("value")
    else:  # buttons, progress bars, styles, layouts: nothing to print
        return ""
    return (f'<span style="white-space:nowrap;display:inline-block;margin-right:1.2em">'
            f'<b>{label or "setting"}</b>: {html.escape(str(shown))}</span>')


def static_notebook(notebook):
    """Replace plotly and widget outputs by static HTML (plotly.js embedded once); drop the widget state.

    Args:
        notebook: an executed ``nbformat`` notebook (changed in place and returned).
    """
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    plotly = _Plotly()
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY in data or WIDGET_VIEW in data:
                body = _output_html(output, state, plotly)
                if WIDGET_VIEW in data:
                    body = (f'<div style="border:1px dashed #999;padding:0.5rem;margin:0.3rem 0">'
                            f"<p><i>{PANEL_NOTE}</i></p>{body}</div>")
                output["data"] = {"text/html": body}
                output.get("metadata", {}).clear()
    # without the state nbconvert does not load the widget manager from a CDN (blank offline anyway)
    notebook.metadata.pop("widgets", None)
    return notebook


def handout(path: Path, workdir: Path, timeout: int) -> str:
    """Execute one notebook in ``workdir`` and export it to static HTML.

    Raises:
        RuntimeError: the notebook raised (naming it and the error).
    """
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import CellExecutionError, ExecutePreprocessor

    notebook = nbformat.read(path, as_version=4)
    runner = ExecutePreprocessor(timeout=timeout, kernel_name="python3", store_widget_state=True)
    try:
        runner.preprocess(notebook, {"metadata": {"path": str(workdir)}})
    except CellExecutionError as error:
        raise RuntimeError(f"{path.name} failed while executing:\n{error}") from None
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    body, _ = exporter.from_notebook_node(static_notebook(notebook))
    # require.js would capture plotly.js as an AMD module (charts blank online); nothing else needs it
    return body.replace(f'<script src="{exporter.require_js_url}"></script>', "")


def lesson_html(path: Path) -> str:
    """A lesson plan (Markdown) as a printable HTML page."""
    import mistune

    text = path.read_text(encoding="utf-8")
    render = mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])
    title = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")), path.stem)
    return PAGE.format(title=html.escape(title), body=render(text))


def _index(handouts: list[str], lessons: list[str]) -> str:
    def items(folder, names):
        return "".join(f'<li><a href="{folder}/{html.escape(n)}">{html.escape(n)}</a></li>' for n in names)

    body = ("<h1>compresslab instructor pack</h1>"
            f"<p>Built {time.strftime('%Y-%m-%d %H:%M %Z')} by <code>make instructor</code>.</p>"
            f"<h2>Lesson plans</h2><ul>{items('lessons', lessons)}</ul>"
            f"<h2>Handouts (solution notebooks, executed)</h2><ul>{items('handouts', handouts)}</ul>")
    return PAGE.format(title="compresslab instructor pack", body=body)


def build(out: Path, notebooks: list[str] | None = None, *, source: Path = ROOT / "notebooks",
          lessons: Path = LESSONS, timeout: int = 900, echo=print) -> Path:
    """Build the pack into ``out`` (replaced whole, only once everything is built).

    Args:
        out: the pack's folder.
        notebooks: notebook file names to include (default: every ``0*.ipynb`` in ``source``).
        source: the student notebooks (their solution edition is built from instructor/solutions.json).
        lessons: the folder of lesson plans (``*.md``).
        timeout: seconds allowed per cell.
        echo: called with one progress line per step.

    Raises:
        ValueError: a requested notebook does not exist.
        RuntimeError: a notebook failed to execute (``out`` is left as it was).
    """
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    available = sorted(p.name for p in source.glob("0*.ipynb"))
    chosen = available if notebooks is None else list(notebooks)
    missing = sorted(set(chosen) - set(available))
    if missing:
        raise ValueError(f"no such notebook(s) {missing} in {source}; available: {available}")
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        with tempfile.TemporaryDirectory(prefix="compresslab-instructor-") as scratch:
            solutions = {p.name: p for p in build_solutions(Path(scratch) / "solutions", folder=source)}
            (staging / "handouts").mkdir()
            for name in chosen:
                started = time.perf_counter()
                workdir = Path(scratch) / "run" / Path(name).stem
                workdir.mkdir(parents=True)
                page = handout(solutions[name], workdir, timeout)
                (staging / "handouts" / f"{Path(name).stem}.html").write_text(page, encoding="utf-8")
                echo(f"handout {name}: {time.perf_counter() - started:.0f} s, {len(page) / 1e6:.1f} MB")
        (staging / "lessons").mkdir()
        plans = sorted(lessons.glob("*.md"))
        for plan in plans:
            (staging / "lessons" / f"{plan.stem}.html").write_text(lesson_html(plan), encoding="utf-8")
        echo(f"lesson plans: {len(plans)}")
        (staging / "index.html").write_text(
            _index([f"{Path(n).stem}.html" for n in chosen], [f"{p.stem}.html" for p in plans]), encoding="utf-8")
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the pack is for sharing
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}-old-", dir=out.parent))
            out.rename(retired / out.name)
            staging.rename(out)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(ROOT / "build" / "instructor"), help="the pack's folder")
    parser.add_argument("--notebooks", nargs="+", default=None, help="only these notebooks (file names)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell (default 900)")
    args = parser.parse_args(argv)
    try:
        out = build(Path(args.out), args.notebooks, timeout=args.timeout)
    except (ValueError, RuntimeError) as error:
        print(f"instructor pack: error: {error}", file=sys.stderr)
        return 1
    print(f"instructor pack: {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
