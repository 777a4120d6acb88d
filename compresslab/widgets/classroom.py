"""ClassroomApp: the code-free classroom dashboard (served by Voila from ``notebooks/app.ipynb``).

Two dropdowns choose a data set and a zoo model; **Load** loads the data set and the trained
baseline (trained once, then cached). One tab per technique (Quantize, Prune, Distill) builds its
panel the first time it is opened; the Compare tab gathers every variant measured in the other
tabs into a :class:`~compresslab.widgets.TradeoffBoard`.

Example:
    >>> app = cl.widgets.ClassroomApp()
    >>> app.load()
    >>> app.view          # displays the dashboard
"""

from __future__ import annotations

import os
from pathlib import Path

import ipywidgets as widgets

from ..data import load_dataset
from ..i18n import LANGUAGES, MESSAGES, get_language, set_language, t
from ..measure import measure
from ..models import ARCHITECTURES
from ..models import baseline as train_baseline
from ..serving import work_folder
from ._base import Panel
from .collect import ExportResultsBox
from .distillation import DistillationLab
from .pruning import PruningLab
from .quantization import QuantizationLab
from .tradeoff import TradeoffBoard

TABS = ("Quantize", "Prune", "Distill", "Compare")
CLASS_STORAGE_VARIABLE = "COMPRESSLAB_CLASS_STORAGE"
DATA_DIR_VARIABLE = "COMPRESSLAB_DATA_DIR"


def mnist_folder(data_dir: str | os.PathLike | None = None) -> str | None:
    """The folder MNIST is read from: ``data_dir``, else ``COMPRESSLAB_DATA_DIR`` read now; ``None`` if absent.

    Read when called (when the app is built, not at import), so a launcher or a test can set the
    variable after ``import compresslab``.

    Args:
        data_dir: a folder holding MNIST's IDX files, or ``None`` for the variable.

    Returns:
        The folder as a string when it exists, else ``None``.

    Example:
        >>> mnist_folder("no/such/folder") is None
        True
    """
    folder = os.fspath(data_dir) if data_dir is not None else os.environ.get(DATA_DIR_VARIABLE, "")
    return folder if folder and Path(folder).is_dir() else None


def dataset_choices(folder: str | None) -> tuple[list[tuple[str, str]], str]:
    """The data sets the app offers, and a note saying how to unlock the others.

    Args:
        folder: the MNIST folder from :func:`mnist_folder`, or ``None``.

    Returns:
        ``(options, note)``: dropdown options ``(label, name)`` (digits first, always offered) and
        an HTML note, empty when MNIST is offered.

    Example:
        >>> dataset_choices("../shared/data/mnist")[0][1]
        ('MNIST (from ../shared/data/mnist)', 'mnist')
    """
    options = [(t("app.digits"), "digits")]
    if folder:
        options.append((t("app.mnist", folder=folder), "mnist"))
        return options, ""
    return options, t("app.mnist_note", variable=DATA_DIR_VARIABLE)


class ClassroomApp(Panel):
    """Dropdowns choose a baseline; each tab builds its panel the first time it is opened.

    Args:
        data_dir: folder of MNIST's IDX files (default: ``COMPRESSLAB_DATA_DIR``, read here).
        baseline_options: keyword arguments for :func:`compresslab.baseline` (``epochs``, ``seed``,
            ``cache_dir``, ``progress``...), e.g. a few epochs in a test.
        work_dir: the student's working folder; every file the app writes from a typed path lands
            inside it (default: ``COMPRESSLAB_WORK_DIR``, else one folder per OS user; see
            :func:`compresslab.serving.work_folder`).

    Controls: ``dataset``, ``arch``, ``load`` (load the data set and the baseline), ``add_pruned``
    (measure the Prune tab's model for Compare), ``gather`` (rebuild Compare). Attributes:
    ``tabs`` (the ``ipywidgets.Tab``), ``panels`` (tab title -> built panel), ``model``, ``data``.

    Example:
        >>> app = ClassroomApp(baseline_options={"epochs": 2})
        >>> app.controls["arch"].value = "student_cnn"; app.load()
    """

    title = "compresslab classroom"

    def __init__(self, *, data_dir: str | os.PathLike | None = None, baseline_options: dict | None = None,
                 work_dir: str | os.PathLike | None = None):
        super().__init__()
        self.work_dir = work_folder(work_dir)
        self.data_dir = mnist_folder(data_dir)
        self.baseline_options = dict(baseline_options or {})
        self.data = self.model = None
        self.panels: dict[str, Panel] = {}
        self.extra_records: list = []
        self.kept_records: list = []  # measured under an earlier Load: kept, shown in Compare
        self.baseline_record = None
        self.controls["language"] = widgets.Dropdown(options=_language_options(), value=get_language(),
                                                     layout=widgets.Layout(width="220px"))  # "中文 / English" in full
        self.controls["dataset"] = widgets.Dropdown(options=dataset_choices(self.data_dir)[0], value="digits",
                                                    layout=widgets.Layout(width="420px"))
        self.controls["arch"] = widgets.Dropdown(options=ARCHITECTURES, value="seed_cnn")
        self.controls["load"] = widgets.Button(icon="refresh", button_style="primary")
        self.controls["add_pruned"] = widgets.Button(icon="plus", layout=widgets.Layout(width="300px"))
        self.controls["gather"] = widgets.Button(icon="refresh", layout=widgets.Layout(width="300px"))
        self.log = widgets.Output(layout=widgets.Layout(max_height="110px", overflow="auto"))
        self.note = widgets.HTML()
        self.pages = [widgets.VBox([widgets.HTML()]) for _ in TABS]
        self.tabs = widgets.Tab(children=self.pages)
        self._label()
        self.controls["language"].observe(self.guard(self._on_language), names="value")
        self.run_button(self.controls["load"], self.load)
        self.run_button(self.controls["add_pruned"], self.add_pruned)
        self.run_button(self.controls["gather"], lambda button: self.open_tab(TABS.index("Compare")))
        self.tabs.observe(self.guard(lambda change: self.open_tab(change["new"])), names="selected_index")
        self.export_box = ExportResultsBox(lambda: self.records() if self.model is not None else [], self.work_dir)
        self.view = widgets.VBox([
            widgets.HBox([self.controls["dataset"], self.controls["arch"], self.controls["load"], self.progress,
                          self.controls["language"]]),
            self.note, self.status, self.error_box, self.log, self.tabs,
            self.export_box.view])

    def _label(self) -> None:
        """Every label of the app itself in the language in use (the panels keep the one they were built in)."""
        c = self.controls
        c["language"].description = t("app.language")
        dataset = c["dataset"].value
        options, note = dataset_choices(self.data_dir)
        c["dataset"].options = options
        c["dataset"].value = dataset
        c["dataset"].description = t("app.dataset")
        c["arch"].description = t("app.model")
        c["load"].description = t("app.load")
        c["add_pruned"].description = t("app.add_pruned")
        c["gather"].description = t("app.gather")
        self.note.value = f"<small>{note}</small>"
        self.tabs.titles = [t(f"app.tab.{tab}") for tab in TABS]
        for index, page in enumerate(self.pages):
            if TABS[index] not in self.panels:
                page.children = [widgets.HTML(t("app.press_load") if self.model is None else t("app.building"))]

    def _on_language(self, change) -> None:
        # The app's own labels change at once; a panel already built keeps its language until Load rebuilds it.
        set_language(change["new"])
        self._label()
        if self.panels:
            self.status.value = f'<span class="compresslab-status">{t("app.reload_note", language=t("app.language_name"))}</span>'

    def load(self, button=None) -> None:
        """Load the chosen data set and baseline (trained once, then cached); reset every tab."""
        name, arch = self.controls["dataset"].value, self.controls["arch"].value
        with self.busy(self.controls["load"], label=t("app.loading_label")):
            self.set_status(t("app.loading", name=name, arch=arch))
            self.log.clear_output()
            with self.log:
                self.data = load_dataset(name, data_dir=self.data_dir if name == "mnist" else None)
                self.model = train_baseline(arch, self.data, **self.baseline_options)
            self.log.clear_output()
            # Results measured so far are kept (Compare shows them next to the new model's), never wiped.
            if self.panels or self.extra_records:
                seen = {record.key for record in self.kept_records}
                self.kept_records += [r for r in self.records() if r.key not in seen]
            self.panels, self.extra_records, self.baseline_record = {}, [], None
            for page in self.pages:
                page.children = [widgets.HTML(t("app.building"))]
        self.set_status(t("app.loaded", arch=arch, name=name, params=self.model.count_params(),
                          train=len(self.data.x_train), test=len(self.data.x_test))
                        + (t("app.kept", count=len(self.kept_records)) if self.kept_records else ""))
        self.open_tab(self.tabs.selected_index or 0)

    def open_tab(self, index: int) -> None:
        """Build a tab's panel on first view; Compare is rebuilt each time from every tab's records.

        Args:
            index: the tab's position in :data:`TABS`. Nothing happens before :meth:`load`.
        """
        tab = TABS[index]
        if self.model is None or (tab in self.panels and tab != "Compare"):
            return
        with self.busy(None, label=t("app.building_tab", tab=t(f"app.tab.{tab}"))):
            if tab == "Quantize":
                panel = QuantizationLab(self.model, self.data, export_dir=self.work_dir / "exports")
                children = [panel.view]
            elif tab == "Prune":
                panel = PruningLab(self.model, self.data)
                children = [self.controls["add_pruned"], panel.view]
            elif tab == "Distill":
                panel = DistillationLab(self.model, self.data)
                children = [panel.view]
            else:
                # the class board's database is the teacher's choice (COMPRESSLAB_CLASS_STORAGE), not a visitor's
                panel = TradeoffBoard(self.records(), class_storage=os.environ.get(CLASS_STORAGE_VARIABLE) or None,
                                      lock_class_storage=True)
                children = [widgets.HTML(t("app.compare_intro")), self.controls["gather"], panel.view]
        self.panels[tab] = panel
        self.pages[index].children = children

    def records(self) -> list:
        """The baseline's record, every record measured in the other tabs, and those kept from earlier loads."""
        if self.baseline_record is None:
            self.baseline_record = measure(self.model, self.data, name=f"{self.model.name} float32")
        found = [self.baseline_record, *self.extra_records]
        found += list(getattr(self.panels.get("Quantize"), "records", []) or [])
        found += list((getattr(self.panels.get("Distill"), "records", None) or {}).values())
        current = {record.key for record in found}
        return found + [record for record in self.kept_records if record.key not in current]

    def add_pruned(self, button=None) -> None:
        """Measure the Prune tab's current model (TFLite and gzip sizes, LiteRT accuracy) for Compare."""
        if "Prune" not in self.panels:
            raise RuntimeError("open the Prune tab and choose a sparsity first")
        lab = self.panels["Prune"]
        spec = lab.spec()
        rule = f"|w| < {spec.threshold:.4f}" if spec.method == "threshold" else f"{spec.scope} scope"
        name = f"{self.model.name} pruned {lab.last_sparsity:.1%} ({rule})"
        if self.already_measured(self.extra_records, name):  # a second press adds nothing
            return
        with self.busy(self.controls["add_pruned"], label=t("app.measuring")):
            record = measure(lab.workbench.export(), self.data, technique="prune", spec=spec, name=name)
        self.extra_records.append(record)
        self.set_status(t("app.added", name=record.name, accuracy=record.accuracy, gzip=record.gzip_bytes))


def _language_options() -> list[tuple[str, str]]:
    """The language selector's choices, each named in its own language ("English", "中文")."""
    return [(MESSAGES["app.language_name"][code], code) for code in LANGUAGES]


__all__ = ["ClassroomApp", "TABS", "dataset_choices", "mnist_folder"]
