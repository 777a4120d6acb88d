"""StudyMonitor: a study's progress and its size/accuracy front, in a notebook, while workers run it.

Owns: one panel over a compresslab study (a sweep, an autocompress search or a class board): a
progress bar (trials done of the total, with running, queued and failed counts), the tradeoff
chart of every finished trial with the Pareto front, a refresh button, and :meth:`watch`, which
refreshes on its own every few seconds until the study is finished (or :meth:`stop` is called).
The panel only reads the study; workers run it elsewhere (``compresslab worker`` or
``cl.studies.run_worker``).

Example:
    >>> monitor = cl.widgets.StudyMonitor("prune-grid", storage="sqlite:///data/studies.db")
    >>> monitor.watch(every=2.0)
    >>> monitor          # displays the panel
"""

from __future__ import annotations

import threading

import ipywidgets as widgets

from ..i18n import t
from ..plots.tradeoff import fig_tradeoff
from ..records import to_frame
from ._base import Panel, figure_widget, replace_figure


class StudyMonitor(Panel):
    """Progress and the tradeoff chart of one study, refreshed on demand or every few seconds.

    Args:
        study_or_name: an Optuna study created by compresslab, or its name in ``storage``.
        storage: where the study lives (None: the default SQLite file), when a name is given.

    Controls: ``refresh`` (a button). Figures: ``tradeoff``. ``progress`` is the bar,
    ``status`` the line saying done / running / queued / failed.
    """

    title = "Study monitor"

    def __init__(self, study_or_name, storage=None):
        super().__init__()
        from ..studies import load_study

        self.study = load_study(study_or_name, storage) if isinstance(study_or_name, str) else study_or_name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.controls["refresh"] = widgets.Button(description=t("study.refresh"), icon="refresh")
        self.progress.layout.visibility = "visible"
        self.records = []
        self.figures["tradeoff"] = figure_widget(self._figure())
        self.controls["refresh"].on_click(self.guard(lambda _button: self.refresh()))
        self.view = widgets.VBox([
            widgets.HTML(f"<b>{t('study.heading', name=self.study.study_name)}</b>"),
            widgets.HBox([self.controls["refresh"], self.progress]), self.status, self.error_box,
            self.figures["tradeoff"]])
        self.refresh()

    def _figure(self):
        frame = to_frame(self.records)
        return fig_tradeoff(frame, title=t("study.trials_title", name=self.study.study_name, count=len(self.records)))

    def refresh(self):
        """Read the study again: progress counts, and the chart of every finished trial."""
        from ..studies import progress, study_records

        state = progress(self.study)
        self.records = study_records(self.study)
        total = state.total if state.total is not None else max(1, state.done + state.running + state.waiting)
        self.progress.max = max(1, total)
        self.progress.value = min(state.done, self.progress.max)
        self.set_status(state.line())
        replace_figure(self.figures["tradeoff"], self._figure())
        return state

    def watch(self, every: float = 2.0) -> None:
        """Refresh every ``every`` seconds in the background until the study is finished or :meth:`stop`."""
        if not every > 0:
            raise ValueError(f"every is {every!r}; give a number of seconds > 0")
        self.stop()
        self._stop.clear()

        def loop():
            while not self._stop.wait(every):
                try:
                    if self.refresh().finished:
                        return
                except Exception as error:  # noqa: BLE001  (shown in the panel, never lost in a thread)
                    self.show_error(error)
                    return

        self._thread = threading.Thread(target=loop, name="compresslab-study-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background refresh (if one runs)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


class ClassSubmitBox(Panel):
    """"Submit to class board": the class study's name, the student's name, and a button.

    Args:
        records: a callable returning the Records to submit (e.g. ``lambda: board.records``).
        storage: the class board's database URL (None: the default SQLite file); editable in the box
            unless ``locked``.
        locked: the storage is fixed (a served classroom app): the field is shown disabled and
            :meth:`submit` always uses ``storage``, whatever the field says, so a visitor cannot make
            the server write a database file where they choose.

    Pressing the button twice adds nothing the second time: a record already on the board is
    recognised (``cl.studies.submit``). Controls: ``study``, ``student``, ``storage``, ``submit``.
    """

    title = "Submit to the class board"

    def __init__(self, records, storage=None, *, locked: bool = False):
        super().__init__()
        self._records = records
        self._storage, self._locked = storage, bool(locked)
        self.controls["study"] = widgets.Text(value="", placeholder=t("submit.class_placeholder"),
                                              description=t("submit.class"), layout=widgets.Layout(width="260px"))
        self.controls["student"] = widgets.Text(value="", placeholder=t("submit.student_placeholder"),
                                                description=t("submit.student"), layout=widgets.Layout(width="260px"))
        self.controls["storage"] = widgets.Text(value=storage or "", placeholder=t("submit.storage_placeholder"),
                                                description=t("submit.storage"), layout=widgets.Layout(width="420px"),
                                                disabled=self._locked)
        self.controls["submit"] = widgets.Button(description=t("submit.button"), icon="upload",
                                                 layout=widgets.Layout(width="220px"))
        self.run_button(self.controls["submit"], self.submit)
        self.view = widgets.VBox([
            widgets.HTML(f"<b>{t('submit.title')}</b>"),
            widgets.HBox([self.controls["study"], self.controls["student"]]),
            widgets.HBox([self.controls["storage"], self.controls["submit"]]), self.status, self.error_box])

    def submit(self, button=None) -> int:
        """Submit the records now; returns how many were new on the board."""
        from ..studies import submit

        name = self.controls["study"].value.strip()
        if not name:
            raise ValueError("type the class board's name (your lecturer gives it, e.g. lab-3) before submitting")
        student = self.controls["student"].value.strip() or None
        storage = self._storage if self._locked else (self.controls["storage"].value.strip() or None)
        records = list(self._records())
        with self.busy(self.controls["submit"], label=t("submit.submitting")):
            added = submit(name, records, student=student, storage=storage)
        self.set_status(t("submit.done", added=added, name=name, already=len(records) - added))
        return added


__all__ = ["StudyMonitor", "ClassSubmitBox"]
