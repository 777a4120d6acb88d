"""What every panel shares: controls and figures dicts, an error box, a status line and long runs.

A panel subclass builds its widgets in ``__init__``, registers them in ``self.controls`` and
``self.figures`` (plotly ``FigureWidget`` s), maps controls to a spec with ONE method, calls
the core, and updates figures in place. Callbacks are wrapped with :meth:`Panel.guard` so an
exception shows in the panel's error box instead of vanishing into the kernel log.
"""

from __future__ import annotations

import html
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager

import ipywidgets as widgets


class Panel:
    """Base class of the compresslab panels.

    Attributes:
        controls: name -> ipywidget (sliders, toggles, buttons).
        figures: name -> ``plotly.graph_objects.FigureWidget``.
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

    # -- errors -------------------------------------------------------------------------------

    def show_error(self, error: BaseException) -> None:
        """Put an error in the panel's error box (and keep it in ``last_error`` for tests)."""
        self.last_error = error
        detail = html.escape("".join(traceback.format_exception_only(type(error), error)).strip())
        self.error_box.value = (
            '<div class="compresslab-error" style="border:1px solid #c62828;background:#ffebee;'
            f'color:#b71c1c;padding:6px 10px;border-radius:4px"><b>Error:</b> {detail}</div>'
        )

    def clear_error(self) -> None:
        self.last_error = None
        self.error_box.value = ""

    def guard(self, function: Callable) -> Callable:
        """Wrap a callback so that any exception lands in the error box, never in the kernel log."""

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
        self.status.value = f'<span class="compresslab-status">{html.escape(text)}</span>'

    # -- long work ----------------------------------------------------------------------------

    @contextmanager
    def busy(self, button: widgets.Button | None = None, *, total: int = 1, label: str = "working"):
        """Disable ``button`` and show the progress bar while the block runs.

        Yields a ``step(n=1, text=None)`` function that advances the bar. The button is enabled
        again and the bar hidden whatever happens; errors propagate (use inside a guarded callback).
        """
        if button is not None:
            button.disabled = True
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
            if button is not None:
                button.disabled = False
            self.progress.layout.visibility = "hidden"
            self.last_run_seconds = time.perf_counter() - started

    def run_button(self, button: widgets.Button, function: Callable) -> None:
        """Connect a button to ``function(button)``, guarded."""
        button.on_click(self.guard(function))

    # -- display -------------------------------------------------------------------------------

    def _ipython_display_(self):
        from IPython.display import display

        display(self.view)

    def _repr_mimebundle_(self, **kwargs):
        return self.view._repr_mimebundle_(**kwargs)


def figure_widget(figure):
    """Wrap a ``go.Figure`` in a ``go.FigureWidget``, passing its layout to the constructor.

    Voila drops layout changes made after a FigureWidget is created, so the layout must travel
    with the constructor.
    """
    import plotly.graph_objects as go

    return go.FigureWidget(data=figure.data, layout=figure.layout)


def replace_figure(target, source) -> None:
    """Update a FigureWidget in place from a freshly built ``go.Figure`` (one message to the browser).

    When the number and types of traces match, their data are updated trace by trace;
    otherwise the traces are replaced.
    """
    with target.batch_update():
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
        target.layout.update(source.layout.to_plotly_json(), overwrite=True)
