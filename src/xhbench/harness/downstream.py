"""The reference segmenter of downstream evaluation: trained once, cached, passed to scoring.

A task that scores synthesized modalities by downstream segmentation (a synthesis task
with ``downstream=true``) names a segmentation method and profile and offers a
:class:`~xhbench.tasks.downstream.SegmentationView` of its training data
(:meth:`~xhbench.tasks.base.Task.downstream_view`). The segmenter is trained on it once and
cached under ``<cache>/downstream/<method>/<key>.pt``, the key being the hash of the
method's name and resolved config, the view (task and data set, origin, training case ids
and the size of every file they read) and the segmenter's own seed (the task's, not the
run's: every synthesis run of a task, whatever its seed, is judged by the same segmenter),
as pre-training is cached. Training leaves the random state of the run as it found it.
Concurrent runs (a sweep's workers) share it: the first trains it under a file lock
beside the cache file, the others wait and then restore it
(:func:`~xhbench.harness.weights_cache.cache_entry`). The runner passes it to
:func:`~xhbench.harness.evaluation.evaluate`, which hands it with each prediction to the
task's :meth:`~xhbench.tasks.base.Task.downstream_rows`.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.base import default_cache_dir
from ..errors import ConfigError
from . import config as cfg

__all__ = ["ReferenceSegmenter", "corpus_digest", "reference_segmenter"]

log = logging.getLogger("xhbench")


@dataclass
class ReferenceSegmenter:
    """A trained segmentation method and what identifies it (recorded in the run)."""

    method: Any
    identity: dict[str, Any]

    def segment(self, image: np.ndarray) -> np.ndarray:
        """Class indices of one preprocessed volume with every modality present."""
        return self.method.predict(image, (True,) * image.shape[0])


def corpus_digest(cases) -> str:
    """The hash of the training cases' ids and the size in bytes of every file they read."""
    files = []
    for case in cases:
        paths = [*case.images.values(), *([case.label] if case.label else [])]
        files.append([case.case_id, [Path(p).stat().st_size for p in paths]])
    return cfg.config_hash({"cases": files})


def reference_segmenter(task, *, device,
                        cache_dir: Path | None = None) -> ReferenceSegmenter | None:
    """The task's reference segmenter, trained (or restored from the cache); ``None`` when
    the task asks for none."""
    view = task.downstream_view()
    if view is None:
        return None
    return _train_or_restore(view, device=device, cache_dir=cache_dir or default_cache_dir())


def _train_or_restore(view, *, device, cache_dir: Path) -> ReferenceSegmenter:
    import torch

    from ..plugins import get_plugins
    from .seeding import seed_everything
    from .weights_cache import cache_entry, save_weights

    name, profile, seed = view.method, view.profile, view.seed
    entry = get_plugins().registry.get("method", name)
    if "segmentation" not in entry.meta.get("kinds", ()):
        raise ConfigError(f"downstream segmenter {name!r} is not a segmentation method")
    method_cls = entry.load()
    config = cfg.resolve(f"method {name}", method_cls.Config, method_cls.profiles, profile)
    method = method_cls(config, view.spec, device)
    cases = view.train_cases()
    key = cfg.config_hash({"method": name, "config": cfg.to_dict(config), "view": view.name,
                           "dataset": view.data.name, "origin": view.data.origin,
                           "corpus": corpus_digest(cases), "seed": seed})
    path = cache_dir / "downstream" / name / f"{key}.pt"
    identity = {"method": name, "profile": profile, "config": cfg.to_dict(config),
                "key": key, "train_cases": len(cases), "seed": seed, "cache": str(path)}
    with cache_entry(path) as cached:
        if cached:
            method.load_state_dict(torch.load(path, map_location=device, weights_only=False))
            log.info("downstream segmenter %s (%s) reused from %s", name, profile, path)
            return ReferenceSegmenter(method, {**identity, "trained_now": False})
        log.info("downstream segmenter %s (%s): training on %d cases", name, profile, len(cases))
        workdir = path.with_suffix("")  # the fit's resumable state, beside the cache file
        workdir.mkdir(parents=True, exist_ok=True)
        states = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            seed_everything(seed)
            history = method.fit(view.training_data(cases, method.roi,
                                                    handles_missing=method.handles_missing),
                                 workdir, log.info)
        random.setstate(states[0])
        np.random.set_state(states[1])
        save_weights(path, method.state_dict())
    return ReferenceSegmenter(method, {**identity, "trained_now": True,
                                       "fit": _short(history)})


def _short(history: Any) -> Any:
    """The fit history without long per-step lists (for the run record)."""
    if not isinstance(history, dict):
        return history
    return {k: v for k, v in history.items() if not (isinstance(v, list) and len(v) > 20)}
