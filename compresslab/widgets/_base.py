"""What every panel shares: controls and figures dicts, an error box, a status line and long runs.

A panel subclass builds its widgets in ``__init__``, registers them in ``self.controls`` and
``self.figures`` (:class:`LiveFigure` s: plotly figures that are widgets), maps controls to a spec with ONE method, calls
the core, and updates figures in place. Callbacks are wrapped with :meth:`Panel.guard` so an
exception shows in the panel's error box instead of vanishing into the kernel log.
"""

from __future__ import annotations

import html
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import ipywidgets as widgets

from ..i18n import t


class Panel:
    """Base class of the compresslab panels.

    Attributes:
        controls: name -> ipywidget (sliders, toggles, buttons).
        figures: name -> :class:`LiveFigure` (a plotly figure that is also a widget).
        error_box: an HTML widget that shows the last error (empty when all is well).
        status: an HTML widget for short messages ("int8 PTQ: 94.2% in 1.3 s").
        progress: an IntProgress bar used by long runs.
        view: the top-level widget (displayed when the panel is the last expression of a cell).
    """

    title = "compresslab panel"

    def __init__(self):
        self.controls: dict[str, widgets.Widget] = {}
        self.figures: dict[str, object] = {}
        self.error_box = widgets.HTML(value="", layout=widgets.Layout(width="100%"))
        self.status = widgets.HTML(value="")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="",
                                            layout=widgets.Layout(width="60%", visibility="hidden"))
        self.last_error: BaseException | None = None
        self.view: widgets.Widget = widgets.VBox([])
        self._run_buttons: list[widgets.Button] = []

    # -- errors -------------------------------------------------------------------------------

    def show_error(self, error: BaseException) -> None:
        """Put an error in the panel's error box (and keep it in ``last_error`` for tests).

        Args:
            error: the exception to show; its message is HTML-escaped.
        """
        self.last_error = error
        detail = html.escape("".join(traceback.format_exception_only(type(error), error)).strip())
        self.error_box.value = (
            '<div class="compresslab-error" style="border:1px solid #c62828;background:#ffebee;'
            f'color:#b71c1c;padding:6px 10px;border-radius:4px"><b>{t("panel.error")}</b> {detail}</div>'
        )

    def clear_error(self) -> None:
        """Empty the error box (a callback that succeeds calls this)."""
        self.last_error = None
        self.error_box.value = ""

    def guard(self, function: Callable) -> Callable:
        """Wrap a callback so that any exception lands in the error box, never in the kernel log.

        Args:
            function: the callback (a slider observer, a button handler).

        Returns:
            A callback that shows an exception in the error box (and returns ``None``), or clears
            the box and returns ``function``'s result.
        """

        def wrapped(*args, **kwargs):
            try:
                result = function(*args, **kwargs)
            except Exception as error:  # shown to the user, not swallowed
                self.show_error(error)
                return None
            self.clear_error()
            return result

        wrapped.__name__ = getattr(function, "__name__", "callback")
        wrapped.__doc__ = getattr(function, "__doc__", None)
        return wrapped

    def set_status(self, text: str) -> None:
        """Show a short plain-text message (HTML-escaped) in the status line."""
        self.status.value = f'<span class="compresslab-status">{html.escape(text)}</span>'

    # -- long work ----------------------------------------------------------------------------

    @contextmanager
    def busy(self, button: widgets.Button | None = None, *, total: int = 1, label: str = "working"):
        """Disable the panel's buttons and show the progress bar while the block runs.

        Every button connected with :meth:`run_button` (and ``button``) is disabled for the run, so a
        second job cannot be started while one is running (the browser shows them greyed out); each
        gets its previous state back and the bar is hidden whatever happens; errors propagate (use
        inside a guarded callback).

        Args:
            button: the button that started the work (disabled meanwhile), or ``None``.
            total: the number of steps the bar counts.
            label: the bar's description.

        Yields:
            A ``step(n=1, text=None)`` function that advances the bar (and sets the status).
        """
        buttons = list(dict.fromkeys([*self._run_buttons, *([button] if button is not None else [])]))
        previous = [b.disabled for b in buttons]
        for each in buttons:
            each.disabled = True
        self.progress.max = max(1, int(total))
        self.progress.value = 0
        self.progress.description = label
        self.progress.layout.visibility = "visible"
        started = time.perf_counter()

        def step(n: int = 1, text: str | None = None):
            self.progress.value = min(self.progress.max, self.progress.value + n)
            if text:
                self.set_status(text)

        try:
            yield step
        finally:
            for each, state in zip(buttons, previous):
                each.disabled = state
            self.progress.layout.visibility = "hidden"
            self.last_run_seconds = time.perf_counter() - started

    def run_button(self, button: widgets.Button, function: Callable) -> None:
        """Connect a button to ``function(button)``, guarded (errors land in the error box).

        Args:
            button: the ipywidgets Button.
            function: called with the button on each click.
        """
        self._run_buttons.append(button)
        button.on_click(self.guard(function))

    def already_measured(self, records, name: str):
        """The record named ``name`` in ``records`` when that variant was measured before, else None.

        A second press of the same button must not add the same variant twice: the panel shows the
        earlier result instead (``status`` says so).
        """
        for record in records:
            if record.name == name:
                self.set_status(t("panel.already_measured", name=name, accuracy=100 * record.accuracy,
                                  backend=record.accuracy_backend))
                return record
        return None

    # -- display -------------------------------------------------------------------------------

    def _ipython_display_(self):
        from IPython.display import display

        display(self.view)

    def _repr_mimebundle_(self, **kwargs):
        return self.view._repr_mimebundle_(**kwargs)


def _plotly_library():
    """The one widget per kernel that carries plotly.js to the browser (see ``static/chart.js``).

    A plain ipywidgets model whose ``source`` is the Python plotly package's own ``plotly.min.js``:
    sent once per kernel instead of once per chart (plotly's FigureWidget ships its 5 MB bundle
    with every figure), and nothing is fetched from the network.
    """
    global _LIBRARY
    if _LIBRARY is not None and _LIBRARY.comm is not None:
        return _LIBRARY
    import plotly
    from plotly.offline import get_plotlyjs
    from traitlets import Unicode

    class PlotlyLibrary(widgets.Widget):
        source = Unicode("").tag(sync=True)
        version = Unicode("").tag(sync=True)

    _LIBRARY = PlotlyLibrary(source=get_plotlyjs(), version=plotly.__version__)
    return _LIBRARY


def _figure_json(figure) -> tuple[list, dict, dict]:
    """A figure's traces, layout without its template, and template, as plain JSON types.

    Numpy arrays become plotly.js typed-array dicts (``{"dtype": "f8", "bdata": ...}``), the way
    ``plotly.io`` writes them. The template (about 10 kB) travels apart: it rarely changes, and a
    new title must not resend it.
    """
    import json

    import plotly.io as pio

    state = json.loads(pio.to_json(figure.to_dict(), validate=False, remove_uids=False))
    layout = state.get("layout", {})
    template = layout.pop("template", {})
    return state.get("data", []), layout, template


def _live_figure_class():
    """Build the LiveFigure class on first use (plotly and anywidget are imported only when a panel is made)."""
    global _LIVE_FIGURE
    if _LIVE_FIGURE is not None:
        return _LIVE_FIGURE
    import anywidget
    import plotly
    import plotly.graph_objects as go
    from plotly.basedatatypes import BaseFigure
    from traitlets import Dict, Instance, Int, List, Unicode

    class LiveFigure(BaseFigure, anywidget.AnyWidget):
        """A plotly figure that is also a widget: edit it like a ``go.FigureWidget``, see it redrawn.

        Each change (or each ``batch_update``/``hold`` block) sends the figure's traces to the
        browser, and its layout only when the layout changed; the browser updates the chart it
        already shows with ``Plotly.react`` (``static/chart.js``). ``render_count`` counts the
        updates sent.

        Why not ``go.FigureWidget``: each FigureWidget ships plotly's 5 MB widget bundle to the
        browser and anywidget gives it 2 seconds to start; on a busy classroom laptop (or three
        charts in one panel) the chart stayed blank for good. A LiveFigure's own script is a few
        kB and starts at once; plotly.js arrives once per kernel through a shared library widget
        and the chart waits for it as long as it takes (no time limit), saying "drawing chart…"
        meanwhile, or why it could not draw.

        It keeps the figure API the panels and tests use: ``.data``, ``.layout``, ``update_layout``,
        ``add_trace``, ``batch_update()``, ``hold()``, ``to_figure()``.
        """

        _esm = Path(__file__).parent / "static" / "chart.js"
        fig_data = List().tag(sync=True)
        fig_layout = Dict().tag(sync=True)
        fig_template = Dict().tag(sync=True)
        _config = Dict({"displaylogo": False}).tag(sync=True)
        _library = Instance(widgets.Widget, allow_none=True).tag(sync=True, **widgets.widget_serialization)
        _plotly_version = Unicode(plotly.__version__).tag(sync=True)
        _default_width = Int(700).tag(sync=True)  # plotly's own width for a chart without one
        _waiting_text = Unicode("").tag(sync=True)  # in the panel's language, like every panel text
        _failed_text = Unicode("").tag(sync=True)

        def __init__(self, data=None, layout=None, **kwargs):
            self._hold_depth = 0
            self._dirty = False
            self._render_count = 0
            self._ready = False
            # BaseFigure's constructor runs the widget's (its super()); the comm opens below, once the
            # first state is known, so the browser gets it in the opening message.
            BaseFigure.__init__(self, data=data, layout_plotly=layout, **kwargs)
            data, layout, template = _figure_json(self)
            self.set_trait("fig_data", data)
            self.set_trait("fig_layout", layout)
            self.set_trait("fig_template", template)
            self.set_trait("_library", _plotly_library())
            self.set_trait("_waiting_text", t("chart.waiting"))
            self.set_trait("_failed_text", t("chart.failed"))
            self._ready = True
            self._render_count = 1
            self.open()

        def open(self):
            if self._ready:
                anywidget.AnyWidget.open(self)

        @property
        def render_count(self) -> int:
            return self._render_count

        def _render(self):
            if not self._ready:
                return
            if self._hold_depth:
                self._dirty = True
                return
            self._dirty = False
            data, layout, template = _figure_json(self)
            with self.hold_sync():  # one message; unchanged traits are not sent
                if template != self.fig_template:
                    self.fig_template = template
                if layout != self.fig_layout:
                    self.fig_layout = layout
                self.fig_data = data
            self._render_count += 1

        @contextmanager
        def hold(self):
            """Suppress updates inside the block; send once at its end if anything changed."""
            self._hold_depth += 1
            try:
                yield self
            finally:
                self._hold_depth -= 1
                if self._hold_depth == 0 and self._dirty:
                    self._render()

        @contextmanager
        def batch_update(self):
            with self.hold(), BaseFigure.batch_update(self):
                yield

        # Displayed as the widget, not as a static plotly figure.
        def _repr_mimebundle_(self, **kwargs):
            return anywidget.AnyWidget._repr_mimebundle_(self, **kwargs)

        def _ipython_display_(self):
            from IPython.display import display

            display(widgets.VBox([self]))

        def _repr_html_(self):
            return None

        def to_figure(self):
            """A plain ``go.Figure`` copy (for saving or embedding in a report)."""
            return go.Figure(self.to_dict())

    # BaseFigure calls these hooks after every change (FigureWidget sends them to the browser as
    # edit messages); a LiveFigure sends its new state instead.
    for hook in ("_send_relayout_msg", "_send_restyle_msg", "_send_addTraces_msg", "_send_deleteTraces_msg",
                 "_send_moveTraces_msg", "_send_update_msg", "_send_animate_msg"):
        setattr(LiveFigure, hook, lambda self, *args, **kwargs: self._render())

    _LIVE_FIGURE = LiveFigure
    return LiveFigure


_LIVE_FIGURE = None
_LIBRARY = None


def wrapping_row(*children):
    """A row of widgets (charts, buttons) that wraps onto the next line when the page is too narrow.

    Two 600-px charts side by side fit a projector at 1920 px but not a 1366-px laptop with JupyterLab's
    file browser open (the output area is about 930 px wide there): a plain HBox would cut the second one
    off; this row puts it under the first instead.
    """
    return widgets.HBox(list(children), layout=widgets.Layout(flex_flow="row wrap"))


def figure_widget(figure):
    """Wrap a ``go.Figure`` in a :class:`LiveFigure` (a figure that is also a widget).

    The layout travels with the constructor (Voila drops layout edits made before a view exists).

    Args:
        figure: a ``go.Figure`` (from a ``compresslab.plots.fig_*`` function).

    Returns:
        A LiveFigure with the same data and layout.
    """
    return _live_figure_class()(data=figure.data, layout=figure.layout)


def replace_figure(target, source) -> None:
    """Update a panel figure in place from a freshly built ``go.Figure`` (one redraw).

    When the number and types of traces match, their data are updated trace by trace;
    otherwise the traces are replaced.

    Args:
        target: the panel's figure (a LiveFigure, or any plotly figure).
        source: the new ``go.Figure``; its whole layout replaces the target's.
    """
    hold = target.hold() if hasattr(target, "hold") else contextmanager(lambda: (yield))()
    with hold, target.batch_update():
        same_shape = len(target.data) == len(source.data) and all(
            a.type == b.type for a, b in zip(target.data, source.data)
        )
        if same_shape:
            for old, new in zip(target.data, source.data):
                old.update(new.to_plotly_json(), overwrite=True)
        else:
            target.data = []
            for trace in source.data:
                target.add_trace(trace)
        target.layout = source.layout  # whole layout: keys absent in the new figure must go too


def update_traces(figure, traces: list[dict], title: str | None = None, *, accuracy_axis: bool = False) -> None:
    """Update a panel figure's traces in place from plain trace dicts (one redraw).

    Building a ``go.Figure`` per slider move costs more than the model evaluation (plotly
    validates and deep-copies the layout template), so the hot paths hand over trace dicts:
    when the trace count and types match, each trace is updated key by key; otherwise the
    traces are replaced. The layout is untouched except for the title.

    Args:
        figure: the panel's figure.
        traces: plotly trace dicts (``type`` defaults to ``"scatter"``).
        title: a new title text, or ``None`` to keep the current one.
        accuracy_axis: the y axis is accuracy in percent: keep it at least
            :data:`compresslab.plots.common.MIN_ACCURACY_SPAN` points wide.
    """
    with figure.batch_update():
        same_shape = len(figure.data) == len(traces) and all(
            old.type == new.get("type", "scatter") for old, new in zip(figure.data, traces))
        if same_shape:
            for old, new in zip(figure.data, traces):
                old.update({key: value for key, value in new.items() if key != "type"})
        else:
            figure.data = []
            figure.add_traces([dict(trace) for trace in traces])
        if title is not None and figure.layout.title.text != title:
            figure.layout.title.text = title
        if accuracy_axis:
            from ..plots.common import honest_accuracy_axis

            honest_accuracy_axis(figure)
