"""ExportResultsBox: the student's one-click "Export my results" (a file the lecturer merges).

Owns the button that writes every variant the student measured to a new file in their working
folder (:func:`compresslab.records.export_results`, inside ``<work folder>/results``, never outside:
:func:`compresslab.serving.confined_path`) and says where it went. The lecturer merges a folder of
such files with ``compresslab merge FOLDER --report class.html --log class.jsonl``.

Example:
    >>> box = cl.widgets.ExportResultsBox(lambda: lab.records)
    >>> box.controls["export"].click()
"""

from __future__ import annotations

import ipywidgets as widgets

from ..i18n import t
from ..records import export_results
from ..serving import confined_path, work_folder
from ._base import Panel

RESULTS_FOLDER = "results"


class ExportResultsBox(Panel):
    """A name field and an "Export my results" button.

    Args:
        records: a callable returning the Records to export (e.g. ``lambda: lab.records``).
        work_dir: the student's working folder (default: :func:`compresslab.serving.work_folder`);
            files go to its ``results`` subfolder.
        student: the name written with the records; default the working folder's name (one folder
            per student, e.g. ``--work-dir /srv/class/ana``, gives ``ana``). The student may edit it.

    Controls: ``student`` (text), ``export`` (the button). Attributes: ``last_path`` (the file of the
    last export, or ``None``).
    """

    title = "Export my results"

    def __init__(self, records, work_dir=None, *, student: str | None = None):
        super().__init__()
        self._records = records
        self.work_dir = work_folder(work_dir)
        self.last_path = None
        self.controls["student"] = widgets.Text(value=student if student is not None else self.work_dir.name,
                                                placeholder=t("export.name"), description=t("export.name"),
                                                layout=widgets.Layout(width="280px"))
        self.controls["export"] = widgets.Button(description=t("export.button"), icon="download",
                                                 tooltip=t("export.tip"), layout=widgets.Layout(width="200px"))
        self.run_button(self.controls["export"], self.export)
        self.view = widgets.VBox([widgets.HBox([self.controls["student"], self.controls["export"]]),
                                  self.status, self.error_box])

    def export(self, button=None):
        """Write the records to a new file in ``<work folder>/results``; returns its path.

        Raises:
            ValueError: no name typed, or nothing measured yet.
        """
        student = self.controls["student"].value.strip()
        if not student:
            raise ValueError("type your name before exporting: your lecturer sees it next to your results")
        records = list(self._records() or [])
        if not records:
            raise ValueError("nothing measured yet: measure a variant (PTQ, a pruned model, a distillation run) "
                             "first, then export")
        with self.busy(self.controls["export"], label=t("export.exporting")):
            self.last_path = export_results(records, confined_path(self.work_dir, RESULTS_FOLDER), student=student)
        self.set_status(t("export.done", count=len(records), path=self.last_path))
        return self.last_path


__all__ = ["ExportResultsBox", "RESULTS_FOLDER"]
