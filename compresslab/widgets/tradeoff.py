"""TradeoffBoard: every measured variant in a sortable table and on one size-against-accuracy chart.

Example:
    >>> board = cl.widgets.TradeoffBoard("runs/sweep.jsonl")
    >>> board.controls["techniques"].value = ("quantize", "prune")
    >>> board.controls["selected"].value = (0, 3)       # side by side
    >>> board
"""

from __future__ import annotations

import html
import json
import math

import ipywidgets as widgets

from ..i18n import t
from ..plots.common import display_label
from ..plots.tradeoff import SIZE_MEASURES, fig_tradeoff, size_column
from ..records import ExperimentLog, load_records, to_frame
from ._base import Panel, figure_widget, replace_figure

SORT_KEYS = {
    "accuracy": "accuracy",
    "size": "size_bytes",
    "ratio": "ratio",
    "name": "name",
    "technique": "technique",
    "latency": "latency_ms",
    "time": "timestamp",
}
# (column, catalogue key of its header): the table and the comparison speak the panel's language
_TABLE_COLUMNS = [("name", "board.col.name"), ("technique", "board.col.technique"),
                  ("accuracy_pct", "board.col.accuracy_pct"), ("size_bytes", "board.col.size_bytes"),
                  ("ratio", "board.col.ratio"), ("nonzero_params", "board.col.nonzero_params"),
                  ("latency_ms", "board.col.latency_ms"), ("spec_json", "board.col.spec_json")]
_COMPARE_ROWS = [("technique", "board.col.technique"), ("dataset", "board.col.dataset"),
                 ("accuracy_pct", "board.col.accuracy_pct"), ("accuracy_backend", "board.col.accuracy_backend"),
                 ("params", "board.col.params"), ("nonzero_params", "board.col.nonzero_params_long"),
                 ("dense_float32_bytes", "board.col.dense_float32_bytes"), ("tflite_bytes", "board.col.tflite_bytes"),
                 ("gzip_bytes", "board.col.gzip_bytes"), ("extra.compressed_bytes", "board.col.compressed_bytes"),
                 ("size_bytes", "board.col.plotted_size"), ("ratio", "board.col.ratio_long"),
                 ("latency_ms", "board.col.latency_ms"), ("spec_json", "board.col.spec_json")]


def _technique_options(techniques) -> list[tuple[str, str]]:
    """(label, technique) pairs: the label in the panel's language, the value the English name."""
    return [(display_label(name), name) for name in techniques]


def _fmt(value, column: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "&ndash;"
    if column in ("accuracy_pct",):
        return f"{value:.2f}"
    if column == "ratio":
        return f"{value:.1f}"
    if column == "latency_ms":
        return f"{value:.3f}"
    if column == "spec_json":
        try:
            spec = json.loads(value)
            text = ", ".join(f"{k}={json.dumps(v)}" for k, v in spec.items())
        except (TypeError, ValueError):
            text = str(value)
        return html.escape(text if len(text) < 160 else text[:157] + "...")
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


class TradeoffBoard(Panel):
    """Compare every measured variant: a sortable, filterable table and a Pareto chart.

    Args:
        log_or_records: an experiment log path, an :class:`~compresslab.ExperimentLog`, or Records.
        size: the size measure plotted (see ``compresslab.plots.tradeoff.SIZE_MEASURES``).
        class_storage, lock_class_storage: the class board's database URL for the "Submit to class
            board" box, and whether a visitor may change it (see :class:`ClassSubmitBox`).

    Controls: ``techniques`` (filter), ``sort`` and ``descending`` (table order), ``size`` (which
    size is plotted), ``selected`` (variants shown side by side, ringed on the chart),
    ``reload`` (re-read the log). Figures: ``tradeoff``.

    Example:
        >>> board = TradeoffBoard(records)
        >>> board.controls["sort"].value = "size"
    """

    title = "Tradeoff board"

    def __init__(self, log_or_records, *, size: str = "smallest", class_storage=None, lock_class_storage: bool = False):
        super().__init__()
        self._class_storage, self._lock_class_storage = class_storage, lock_class_storage
        if size not in SIZE_MEASURES:
            raise ValueError(f"size is {size!r}; choose one of {', '.join(SIZE_MEASURES)}")
        self.source = log_or_records
        self._load()
        techniques = self._techniques()
        self.controls["techniques"] = widgets.SelectMultiple(
            options=_technique_options(techniques), value=tuple(techniques), description=t("board.techniques"),
            rows=min(6, max(2, len(techniques))))
        self.controls["sort"] = widgets.Dropdown(options=[(t(f"board.sort.{key}"), key) for key in SORT_KEYS],
                                                 value="accuracy", description=t("board.sort"))
        self.controls["descending"] = widgets.Checkbox(value=True, description=t("board.descending"))
        self.controls["size"] = widgets.Dropdown(options=[(t(f"plot.size_measure.{k}"), k) for k in SIZE_MEASURES],
                                                 value=size,
                                                 description=t("board.size"))
        self.controls["selected"] = widgets.SelectMultiple(options=self._options(), value=(),
                                                           description=t("board.compare"), rows=6,
                                                           layout=widgets.Layout(width="420px"))
        from_study = hasattr(self.source, "get_trials")  # a class board or sweep study: reload sees new trials
        self.controls["reload"] = widgets.Button(description=t("board.reload_study" if from_study else "board.reload_log"),
                                                 icon="refresh",
                                                 disabled=not isinstance(self.source, (str, ExperimentLog))
                                                 and not hasattr(self.source, "__fspath__") and not from_study)
        self.table = widgets.HTML()
        self.comparison = widgets.HTML()
        self.figures["tradeoff"] = figure_widget(self._figure())
        for name in ("techniques", "sort", "descending", "size", "selected"):
            self.controls[name].observe(self.guard(self._on_change), names="value")
        self.run_button(self.controls["reload"], self._on_reload)
        self._render_text()
        self.view = widgets.VBox([
            widgets.HTML(f"<h3>{t('board.title')}</h3>"),
            widgets.HBox([self.controls["techniques"],
                          widgets.VBox([self.controls["sort"], self.controls["descending"], self.controls["size"],
                                        self.controls["reload"]]),
                          self.controls["selected"]]),
            self.error_box, self.status, self.figures["tradeoff"], self.comparison, self.table,
            self._submit_box().view,
        ])

    def _submit_box(self):
        """"Submit to class board" for every variant on this board (see :class:`ClassSubmitBox`)."""
        from .study import ClassSubmitBox

        self.class_submit = ClassSubmitBox(lambda: self.records, self._class_storage, locked=self._lock_class_storage)
        return self.class_submit

    # -- state ---------------------------------------------------------------------------------

    def _load(self) -> None:
        records = load_records(self.source)
        if not records:
            raise ValueError(f"{self.source!s} holds no records to compare")
        self.records = records
        self.frame = to_frame(records).reset_index(drop=True)

    def _techniques(self) -> list[str]:
        return list(dict.fromkeys(str(t) for t in self.frame["technique"]))

    def _options(self) -> list[tuple[str, int]]:
        return [(f"{row['name']} ({display_label(row['technique'])})", index) for index, row in self.frame.iterrows()]

    def sized_frame(self):
        """Every row with the plotted size (``size_bytes``), ``ratio`` vs dense float32 and ``row`` position."""
        frame = self.frame.copy()
        sizes, _ = size_column(frame, self.controls["size"].value)
        frame["size_bytes"] = sizes
        frame["ratio"] = [d / s if d and s else None for d, s in zip(frame["ratio_reference_bytes"], sizes)]
        frame["row"] = range(len(frame))
        return frame

    def visible_frame(self):
        """The rows shown now: filtered by technique, with plotted size and ratio, in table order."""
        frame = self.sized_frame()
        frame = frame[frame["technique"].isin(self.controls["techniques"].value)]
        column = SORT_KEYS[self.controls["sort"].value]
        return frame.sort_values(column, ascending=not self.controls["descending"].value, na_position="last",
                                 kind="stable")

    # -- views ---------------------------------------------------------------------------------

    def _figure(self):
        shown = self.frame[self.frame["technique"].isin(self.controls["techniques"].value)]
        rows = list(shown.index)
        selected = [rows.index(i) for i in self.controls["selected"].value if i in rows]
        return fig_tradeoff(shown.reset_index(drop=True), size=self.controls["size"].value, highlight=selected)

    def _render_text(self) -> None:
        frame = self.visible_frame()
        head = "".join(f"<th>{html.escape(t(key))}</th>" for _, key in _TABLE_COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td>{_fmt(row.get(column), column)}</td>" for column, _ in _TABLE_COLUMNS) + "</tr>"
            for _, row in frame.iterrows()
        )
        self.table.value = (f'<table class="compresslab-table" style="border-collapse:collapse;font-size:12px">'
                            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        chosen = list(self.controls["selected"].value)
        if not chosen:
            self.comparison.value = t("board.select_hint")
        else:
            everything = self.sized_frame()
            heads = "".join(f"<th>{html.escape(str(everything.loc[i, 'name']))}</th>" for i in chosen)
            rows = "".join(
                f"<tr><th>{html.escape(t(key))}</th>"
                + "".join(f"<td>{_fmt(everything.loc[i].get(column), column)}</td>" for i in chosen) + "</tr>"
                for column, key in _COMPARE_ROWS if column in everything.columns
            )
            self.comparison.value = (f'<table class="compresslab-compare" style="border-collapse:collapse;'
                                     f'font-size:12px"><thead><tr><th></th>{heads}</tr></thead>'
                                     f"<tbody>{rows}</tbody></table>")
        visible = len(frame)
        self.set_status(t("board.shown", visible=visible, total=len(self.frame), selected=len(chosen)))

    def _refresh(self) -> None:
        replace_figure(self.figures["tradeoff"], self._figure())
        self._render_text()

    # -- callbacks -----------------------------------------------------------------------------

    def _on_change(self, change=None) -> None:
        self._refresh()

    def _on_reload(self, button=None) -> None:
        with self.busy(self.controls["reload"], label=t("board.reading")):
            self._load()
            techniques = self._techniques()
            previous = set(self.controls["techniques"].value)
            known = {value for _, value in self.controls["techniques"].options}
            self.controls["selected"].value = ()
            self.controls["selected"].options = self._options()
            self.controls["techniques"].options = _technique_options(techniques)
            self.controls["techniques"].value = tuple(t for t in techniques if t in previous or t not in known)
            self._refresh()


__all__ = ["TradeoffBoard"]
