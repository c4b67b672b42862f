"""Helpers for testing xhbench and its plugins: fake methods and a contract check.

Plugin authors call :func:`check_method_contract` in their own tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .methods.base import Method
from .tasks.base import TaskSpec

__all__ = ["FakeMethod", "check_learning", "check_method_contract", "check_planned_budget",
           "check_training_contract", "registered_pairs"]


@dataclass
class FakeConfig:
    roi: tuple[int, int, int] = (32, 32, 32)
    threshold: float = 1.0
    channel: int = 0


class FakeMethod(Method):
    """Labels voxels whose first available channel exceeds a threshold; trains nothing.

    Needs no torch, so plugin and harness tests run in a blink.
    """

    name = "fake"
    Config = FakeConfig
    profiles = {"smoke": {}, "default": {}, "paper": {}}

    def fit(self, train_data: Any, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
        log(f"{self.name}: nothing to train ({len(train_data)} samples)")
        return {"steps": 0}

    def predict(self, image: np.ndarray, available: tuple[bool, ...]) -> np.ndarray:
        present = [c for c, ok in enumerate(available) if ok]
        channel = self.config.channel if available[self.config.channel] else present[0]
        out = np.zeros(image.shape[1:], dtype=np.int64)
        out[image[channel] > self.config.threshold] = len(self.spec.out_channels) - 1
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"threshold": self.config.threshold}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.config.threshold = float(state["threshold"])




def check_method_contract(method_cls: type, spec: TaskSpec | None = None,
                          shape: tuple[int, int, int] = (32, 32, 32)) -> None:
    """Build a method with its smoke profile and predict one random volume on CPU.

    Raises:
        AssertionError: wrong output shape or dtype, labels out of range, NaN.
    """
    import torch

    from .harness.config import resolve

    spec = spec or TaskSpec("contract", "segmentation", ("a", "b", "c", "d"),
                            ("background", "x", "y", "z"))
    config = resolve(method_cls.__name__, method_cls.Config, method_cls.profiles, "smoke")
    method = method_cls(config, spec, torch.device("cpu"))
    image = np.random.default_rng(0).normal(size=(len(spec.in_channels), *shape)).astype(np.float32)
    for available in ((True,) * len(spec.in_channels), (True,) + (False,) * (len(spec.in_channels) - 1)):
        prediction = method.predict(image, available)
        assert prediction.shape == shape, f"prediction shape {prediction.shape} != {shape}"
        assert np.issubdtype(prediction.dtype, np.integer), f"dtype {prediction.dtype} not integer"
        assert prediction.min() >= 0 and prediction.max() < len(spec.out_channels), \
            "class index out of range"


#: Method options that make a training a step or two, where a method's config has them.
SHORT_TRAINING = {"steps": "1", "pretrain_steps": "1", "cnn_steps": "1", "warmup_steps": "0",
                  "pretrain_warmup_steps": "0", "checkpoint_every": "0"}


def registered_pairs() -> list[tuple[str, str]]:
    """Every registered method with each task it supports, as ``(method, task)``."""
    from .plugins import get_plugins

    registry = get_plugins().registry
    return [(entry.name, task) for entry in registry.entries("method")
            for task in registry.tasks_supported_by(entry)]


def check_planned_budget(method_cls: type, config: Any, cost: Mapping[str, Any],
                         training: Mapping[str, Any]) -> None:
    """The steps and crops a run counted (``cost.json``) are what
    :meth:`~xhbench.methods.base.Method.training_plan` planned for its config (less the
    runner's pre-training where the run reused it from the cache).

    Raises:
        AssertionError: counted and planned differ.
    """
    cached = "cached" in (training.get("pretraining") or {})
    stages = [s for s in method_cls.training_plan(config) if not (s.pretraining and cached)]
    planned = {"train_steps": sum(s.steps for s in stages)}
    if all(s.batch for s in stages):  # batch 0: left to the method's planner
        planned["train_samples"] = sum(s.crops for s in stages)
    counted = {key: cost.get(key) for key in planned}
    assert counted == planned, f"{method_cls.name}: counted {counted}, planned {planned}"


def check_training_contract(method: str, task: str, workdir: Path,
                            cache_dir: Path | None = None) -> None:
    """``xhbench run`` of the registered ``method`` on ``task``'s smoke phantom, shortened to
    a step of each training stage on 2 training cases and 1 test case; then the method is
    restored from the run's checkpoint into a new instance, which must score that case
    under every setting exactly as the trained one did.

    Raises:
        AssertionError: the restored method predicts otherwise.
        XhbenchError (or any error): the run itself fails.
    """
    import dataclasses

    import pandas as pd
    import torch

    from .harness.checkpoint import CHECKPOINT, load_checkpoint
    from .harness.evaluation import evaluate
    from .harness.runner import RunRequest, execute, open_task, plan
    from .results import RunDir

    request = RunRequest(task=task, method=method, out=workdir / "runs", profile="smoke",
                         device="cpu", cache_dir=cache_dir)
    fields = {f.name for f in dataclasses.fields(plan(request).method_cls.Config)}
    request.overrides = {**{f"method.{key}": value for key, value in SHORT_TRAINING.items()
                            if key in fields},
                         "task.max_train_cases": "2", "task.max_test_cases": "1"}
    planned = plan(request)
    run = execute(planned)
    check_planned_budget(planned.method_cls, planned.method_config, run.read_json("cost.json"),
                         run.read_json("training.json"))
    opened = open_task(planned.task_cls, planned.task_config, None, cache_dir)
    restored = planned.method_cls(planned.method_config, opened.spec, torch.device("cpu"))
    load_checkpoint(run.file(CHECKPOINT), restored, opened.spec)
    again = RunDir(workdir / "restored")
    again.path.mkdir(parents=True)
    evaluate(opened, restored, opened.test_cases(), again, progress=False)
    keys = ["case", "setting", "target", "metric"]
    trained, scored = (r.cases().sort_values(keys).reset_index(drop=True) for r in (run, again))
    assert len(trained) > 0, f"{method} on {task}: no rows"
    pd.testing.assert_frame_equal(trained[keys + ["value"]], scored[keys + ["value"]],
                                  check_exact=True, obj=f"{method} on {task}, restored")


#: Loss terms of the translation GANs that measure the game, not the fit (per pair:
#: ``<pair>/<term>``): discriminator, generator-adversarial, feature matching.
ADVERSARIAL_TERMS = frozenset({"D", "G_gan", "G_adv", "FM"})


def check_learning(method: str, task: str, workdir: Path, *, steps: int = 20,
                   term: str = "loss", overrides: Mapping[str, str] | None = None,
                   cache_dir: Path | None = None) -> dict[str, float]:
    """Train the registered ``method`` at its smoke profile for ``steps`` steps (a step of
    each earlier stage and of the runner's pre-training) on one fixed training crop of
    ``task``'s smoke phantom; its loss (or the loss term ``term``) must fall and its
    prediction of a test case must not be constant (catches a method that learns
    nothing, e.g. a class that dies out).

    "Falls": the mean loss of the last stage's last quarter of steps is below that of its
    first quarter (``history.csv``); for a GAN, the sum of its terms other than the
    adversarial ones (:data:`ADVERSARIAL_TERMS`, which need not fall as the discriminator
    learns). "Not constant": a segmentation predicts at least two classes, a synthesis at
    least two values in every target channel.

    Returns:
        ``{"first": ..., "last": ...}``, the two quarter means.

    Raises:
        AssertionError: the loss did not fall, or the prediction is constant.
    """
    import dataclasses

    import pandas as pd
    import torch

    from .harness.runner import RunRequest, open_task, plan
    from .training.history import FIXED_COLUMNS, HISTORY

    request = RunRequest(task=task, method=method, out=workdir / "runs", profile="smoke",
                         device="cpu", cache_dir=cache_dir)
    fields = {f.name for f in dataclasses.fields(plan(request).method_cls.Config)}
    short = {key: value for key, value in SHORT_TRAINING.items() if key != "steps"}
    request.overrides = {**{f"method.{key}": value for key, value in short.items()
                            if key in fields},
                         "method.steps": str(steps), "task.max_train_cases": "1",
                         "task.max_test_cases": "1", **(overrides or {})}
    planned = plan(request)
    opened = open_task(planned.task_cls, planned.task_config, None, cache_dir,
                       pretraining=planned.method_cls.pretrains)
    learner = planned.method_cls(planned.method_config, opened.spec, torch.device("cpu"))
    torch.manual_seed(0)
    data = opened.training_data(opened.train_cases(), learner.roi,
                                handles_missing=learner.handles_missing)
    fixed = [data[0]]  # every batch is this crop
    workdir.mkdir(parents=True, exist_ok=True)
    if learner.pretrains:
        (workdir / "pretrain").mkdir(exist_ok=True)
        learner.pretrain(opened.pretraining_data(opened.pretraining_cases()[:1], learner.roi),
                         workdir / "pretrain", lambda message: None)
    learner.fit(fixed, workdir, lambda message: None)

    history = pd.read_csv(workdir / HISTORY)
    history = history[history["stage"] == history["stage"].iloc[-1]].dropna(axis=1, how="all")
    terms = [c for c in history.columns if c not in FIXED_COLUMNS]
    if term != "loss":
        last_stage = history[term].to_numpy()
    elif any(c.split("/")[-1] in ADVERSARIAL_TERMS for c in terms):
        last_stage = history[[c for c in terms if c.split("/")[-1] not in ADVERSARIAL_TERMS]
                             ].sum(axis=1).to_numpy()
    else:
        last_stage = history["loss"].to_numpy()
    quarter = max(1, len(last_stage) // 4)
    first, last = float(last_stage[:quarter].mean()), float(last_stage[-quarter:].mean())
    assert last < first, f"{method} on {task}: loss did not fall ({first:.4g} -> {last:.4g})"

    item = opened.prepare(opened.data.read(opened.test_cases()[0]))
    setting = opened.settings()[-1]
    prediction = np.asarray(learner.predict(
        opened.inputs(item, setting, handles_missing=learner.handles_missing),
        tuple(setting.available)))
    if opened.spec.kind == "segmentation":
        assert len(np.unique(prediction)) > 1, f"{method} on {task}: one class predicted"
    else:
        flat = prediction.reshape(prediction.shape[0], -1)
        assert (flat.max(axis=1) > flat.min(axis=1)).all(), \
            f"{method} on {task}: a constant target channel"
    return {"first": first, "last": last}
