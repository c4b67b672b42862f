"""The task contract: data set and split, sample building, settings, scoring.

A task is an evaluation protocol. It owns everything a method must not decide
for itself: which cases train and test, how inputs and targets are built,
under which settings each test case is evaluated, and how it is scored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from ..datasets.base import Case, Dataset, Volume
from ..errors import ConfigError
from ..options import option

__all__ = ["DataSource", "EvalItem", "Setting", "Task", "TaskConfig", "TaskSpec", "WholeCases"]


@dataclass(frozen=True)
class TaskSpec:
    """What a method may know about a task: shapes and names, nothing more."""

    name: str
    kind: str  # "segmentation" or "synthesis"
    in_channels: tuple[str, ...]  # input modality names, in channel order
    out_channels: tuple[str, ...]  # class names (segmentation) or target modalities (synthesis)
    #: input channel -> the physical window ``(low, high)`` the task mapped to [0, 1]
    #: (e.g. PET: SUV ``(0, 20)``), for channels with a quantitative unit; else absent
    windows: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    #: synthesis: the ``(source, target)`` pairs the task scores (what a translation
    #: method trains by default); empty for segmentation
    pairs: tuple[tuple[str, str], ...] = ()


def parse_pairs(text: str, names: tuple[str, ...], what: str = "pairs"
                ) -> list[tuple[str, str]]:
    """``"all"`` or ``"T1->T2,T2->FLAIR"`` -> [(source, target), ...] (case-insensitive).

    The syntax of modality pairs that synthesis tasks and methods share (their ``pairs``
    options), part of the contract methods may read (like :class:`TaskSpec`). ``what``
    names the text in the error (``"task brats23_transfer option pairs"``)."""
    if text.strip().lower() == "all":
        return [(s, t) for s in names for t in names]
    lookup = {name.lower(): name for name in names}
    pairs = []
    for item in text.split(","):
        source, sep, target = item.strip().partition("->")
        if not sep or source.strip().lower() not in lookup or target.strip().lower() not in lookup:
            raise ConfigError(f"{what}: cannot read {item.strip()!r}; write SOURCE->TARGET with "
                              f"modalities {', '.join(names)}, or 'all'")
        pairs.append((lookup[source.strip().lower()], lookup[target.strip().lower()]))
    return pairs


@dataclass(frozen=True)
class Setting:
    """One evaluation condition, e.g. a modality-availability mask."""

    id: str
    name: str
    available: tuple[bool, ...]  # per input channel


@dataclass
class EvalItem:
    """A test case prepared once, evaluated under every setting."""

    case_id: str
    image: np.ndarray  # (C, X, Y, Z) float32, preprocessed, all channels present
    reference: np.ndarray  # what predictions are scored against
    spacing: tuple[float, ...]
    foreground: np.ndarray | None = None  # (X, Y, Z) bool: brain or body, for masked metrics


@dataclass(frozen=True)
class WholeCases:
    """The training split as whole preprocessed cases, for methods that run their own
    sampling pipeline (the nnU-Net package): ``self[i]`` is the task's ``load_case`` arrays of
    ``cases[i]`` plus its voxel ``spacing``. ``settings`` are the availability masks to draw
    one of per training sample; with ``zero_fill`` the method must zero the channels the
    draw marks missing (as the task's own samples do)."""

    cases: Sequence[Case]
    load: Any  # Case -> dict of arrays (Task.load_case)
    spacing: Any  # Case -> voxel spacing in mm
    settings: tuple[Setting, ...]
    zero_fill: bool

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, index: int) -> dict[str, Any]:
        case = self.cases[index]
        return {"case_id": case.case_id, **self.load(case), "spacing": self.spacing(case)}


@dataclass(frozen=True)
class DataSource:
    """Where one data set of a task is read from: ``root``, or (``None``) the phantom
    that ``Dataset.open`` writes into the cache with ``phantom``'s arguments."""

    root: Path | None
    phantom: Mapping[str, Any]


@dataclass
class TaskConfig:
    """Options every task has: the phantom written when no ``--data-root`` is given
    (:meth:`Task.phantom_params`) and limits on the cases used."""

    phantom_seed: int = option(0, ge=0)
    phantom_size: int = option(48, ge=8)
    phantom_train: int = option(16, ge=1)
    phantom_val: int = option(0, ge=0)
    phantom_test: int = option(6, ge=1)
    max_train_cases: int | None = option(None, ge=1)
    max_test_cases: int | None = option(None, ge=1)


class Task(ABC):
    """Base class of tasks. Subclasses set the class attributes and the hooks below.

    Class attributes:
        name: registry name. version: bump whenever split, preprocessing,
        metric or aggregation changes. kind: ``"segmentation"`` or
        ``"synthesis"``. dataset: the registered data set the task trains and
        tests on (``self.data``).
        extra_datasets: further registered data sets the task reads, by role
        (``self.extra_data[role]``). The role ``"pretraining"`` names the corpus whose
        training split pre-trains methods that pre-train (the paper: BraTS 2023 for
        MRI); without it they pre-train on the task's own training split. Other roles
        are the task's own (e.g. a second test set). The runner opens each data set
        through the registry, from :meth:`data_source`, and hands it to the task.
        Config: dataclass of options (a :class:`TaskConfig`); profiles: overrides per profile.
        tables: the paper's table layouts as plain data, recorded in every run
        (format in :mod:`xhbench.leaderboard.paper_tables`).
        external_format: how ``xhbench evaluate`` names and reads predictions made
        outside xhbench (a :class:`~xhbench.tasks.external_format.ExternalFormat` class
        or instance); ``None``: the format of the task's kind.
        overlay: how ``xhbench figures`` draws a segmentation case, as plain data:
        ``{"view": "slice" | "mip", "image": <input channel name>, "settings": [ids]}``
        (format in :mod:`xhbench.harness.overlays`); empty: an axial slice of the first
        channel under the first three settings.
        intensity_shift: the largest offset the segmentation training crops' intensities
        are shifted by (with probability 0.5, on the task's normalised scale); 0 for
        quantitative inputs whose absolute values carry the signal (SUV, HU).
    """

    name: ClassVar[str]
    version: ClassVar[int]
    kind: ClassVar[str]
    dataset: ClassVar[str]
    Config: ClassVar[type]
    profiles: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    test_split: ClassVar[str] = "test"
    tables: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    extra_datasets: ClassVar[Mapping[str, str]] = {}
    external_format: ClassVar[Any] = None
    overlay: ClassVar[Mapping[str, Any]] = {}
    intensity_shift: ClassVar[float] = 0.1

    def __init__(self, config: Any, data: Dataset,
                 extra_data: Mapping[str, Dataset] | None = None):
        self.config = config
        self.data = data
        self.extra_data: dict[str, Dataset] = dict(extra_data or {})

    @property
    @abstractmethod
    def spec(self) -> TaskSpec:
        """Channel and class names a method is built for."""

    @staticmethod
    def phantom_params(config: Any) -> dict[str, Any]:
        """Arguments for :meth:`Dataset.open` when no ``--data-root`` is given."""
        return {"seed": config.phantom_seed, "size": config.phantom_size,
                "cases_per_split": {"train": config.phantom_train, "val": config.phantom_val,
                                    "test": config.phantom_test}}

    @classmethod
    def data_source(cls, config: Any, role: str,
                    roots: Mapping[str, Path | None]) -> DataSource | None:
        """Where the data set of ``role`` (``"main"`` or a key of ``extra_datasets``)
        comes from under ``config``, or ``None`` when this configuration does not read it.

        ``roots`` are the folders given on the command line by role (``"main"``:
        ``--data-root``, ``"pretraining"``: ``--pretrain-data-root``). The default: the
        role's folder, else the phantom of :meth:`phantom_params`.
        """
        return DataSource(roots.get(role), cls.phantom_params(config))

    def train_cases(self) -> list[Case]:
        return self._limit(self.data.cases("train"), self.config.max_train_cases)

    def test_cases(self) -> list[Case]:
        return self._limit(self.data.cases(self.test_split), self.config.max_test_cases)

    def evaluation_split(self) -> str:
        """The run summary's ``split``: a label of the splits :meth:`test_cases` draws from."""
        return self.test_split

    @staticmethod
    def _limit(cases: list[Case], limit: int | None) -> list[Case]:
        return cases if limit is None else cases[:limit]

    @abstractmethod
    def load_case(self, case: Case) -> dict[str, np.ndarray | None]:
        """Read and preprocess one training case: ``image`` (C, X, Y, Z) float32,
        ``foreground`` (X, Y, Z) bool, and ``label`` (X, Y, Z) class indices for
        segmentation (``None`` otherwise). Cached once per case during training."""

    def training_settings(self) -> list[Setting]:
        """The settings drawn uniformly per training sample (default: the test settings)."""
        return self.settings()

    def training_data(self, cases: Sequence[Case], roi: Sequence[int], *,
                      handles_missing: bool):
        """A torch dataset of training samples (keys in :mod:`xhbench.tasks.transforms`)."""
        from .transforms import training_dataset

        return training_dataset(cases, load=self.load_case, roi=roi,
                                settings=self.training_settings(),
                                zero_fill=not handles_missing,
                                synthesis=self.kind == "synthesis",
                                intensity_shift=self.intensity_shift)

    def whole_cases(self, cases: Sequence[Case], *, handles_missing: bool) -> WholeCases:
        """The training cases whole (for methods that set ``trains_on_whole_cases``)."""
        return WholeCases(tuple(cases), self.load_case,
                          lambda case: tuple(self.data.read(case).spacing),
                          tuple(self.training_settings()), zero_fill=not handles_missing)

    @property
    def pretraining_corpus(self) -> Dataset:
        """The data set methods pre-train on: the ``"pretraining"`` extra data set when
        the task has one, else the task's own."""
        return self.extra_data.get("pretraining", self.data)

    def pretraining_cases(self) -> list[Case]:
        """The unlabelled corpus for methods that pre-train: the training split of the
        ``"pretraining"`` data set, else the task's own (limited) training split."""
        if "pretraining" not in self.extra_data:
            return self.train_cases()
        return self.extra_data["pretraining"].cases("train")

    def load_pretraining_case(self, case: Case) -> dict[str, np.ndarray | None]:
        """Read one pre-training case in this task's channel order (default: ``load_case``)."""
        return self.load_case(case)

    def preprocessing_options(self) -> dict[str, Any]:
        """The task options that change the tensors methods are given (a pre-training
        cache key holds them): by default every option of the task's own ``Config``
        beyond :class:`TaskConfig`'s phantom and case-limit options; tasks whose extra
        options only affect evaluation override it."""
        import dataclasses

        common = {f.name for f in dataclasses.fields(TaskConfig)}
        return {f.name: getattr(self.config, f.name) for f in dataclasses.fields(self.config)
                if f.name not in common}

    def pretraining_data(self, cases: Sequence[Case], roi: Sequence[int]):
        """A torch dataset of crops with every modality present: ``image``, ``foreground``."""
        from .transforms import pretraining_dataset

        return pretraining_dataset(cases, load=self.load_pretraining_case, roi=roi)

    @abstractmethod
    def settings(self) -> list[Setting]:
        """The conditions each test case is evaluated under."""

    @abstractmethod
    def prepare(self, volume: Volume) -> EvalItem:
        """Preprocess one loaded test case for evaluation."""

    def inputs(self, item: EvalItem, setting: Setting, *, handles_missing: bool) -> np.ndarray:
        """The network input for one setting: missing channels zero-filled unless the
        method handles missing modalities itself."""
        if handles_missing:
            return item.image
        keep = np.asarray(setting.available, dtype=np.float32)[:, None, None, None]
        return item.image * keep

    @abstractmethod
    def score(self, prediction: np.ndarray, item: EvalItem, setting: Setting) -> list[dict]:
        """Metric rows ``{case, setting, target, metric, value}`` for one prediction."""

    def regions(self, prediction: np.ndarray, item: EvalItem) -> dict[str, tuple[np.ndarray,
                                                                              np.ndarray]]:
        """Named ``(predicted, reference)`` masks that figures outline (segmentation tasks).

        Default: one pair per foreground class, ``prediction == c`` and ``reference == c``.
        """
        names = self.spec.out_channels
        return {names[c]: (np.asarray(prediction) == c, np.asarray(item.reference) == c)
                for c in range(1, len(names))}

    @abstractmethod
    def conventions(self) -> dict[str, str]:
        """How each metric was computed; recorded in every run."""

    @abstractmethod
    def higher_is_better(self) -> dict[str, bool]:
        """Direction of each metric the task reports."""

    def downstream_view(self):
        """The reference segmenter this task asks for and its training data (a
        :class:`~xhbench.tasks.downstream.SegmentationView`), which the harness trains once
        and passes to :meth:`downstream_rows` with every prediction; ``None`` (the
        default): no downstream evaluation."""
        return None

    def downstream_rows(self, prediction: np.ndarray, item: EvalItem, setting: Setting,
                        segmenter) -> list[dict]:
        """The rows of ``prediction`` (one setting of ``item``) that the trained reference
        segmenter of :meth:`downstream_view` scores, in :meth:`score`'s form."""
        raise TypeError(f"task {self.name} asks for no reference segmenter")

