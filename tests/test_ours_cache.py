"""The pre-trained state of ``ours`` is cached under a key that must change with the corpus
as read (phantom size and seed, a task window, the data root and its files) and with the
pre-training code, and must not change with fine-tuning options. Smoke-sized phantoms,
one torch thread."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from xhbench.datasets.base import PHANTOM_MANIFEST
from xhbench.harness import config as cfg
from xhbench.harness.runner import open_task, pretraining_cache_key
from xhbench.methods.ours.method import PRETRAINING_CODE_VERSION, Ours, OursConfig
from xhbench.training.batches import StepBatches
from xhbench.plugins import get_plugins

# The first smoke pre-training batch (its case ids and the mean of each 8^3 block of its
# crops) and loss terms, as PRETRAINING_CODE_VERSION computes them; compared with a
# tolerance, so another CPU's last bits do not fail it. When the test fails, pre-training
# data or losses changed: bump PRETRAINING_CODE_VERSION (stale cached states are then not
# reused) and renew the file: XHBENCH_RENEW_GOLDEN=1 pytest tests/test_ours_cache.py -k golden
# (it refuses to overwrite the values of the version they were recorded for).
GOLDEN = Path(__file__).parent / "golden" / "ours_pretraining.json"


def open_smoke(task_name, cache, *, data_root=None, pretrain_root=None, **overrides):
    task_cls = get_plugins().registry.load("task", task_name)
    config = cfg.resolve(f"task {task_name}", task_cls.Config, task_cls.profiles, "smoke",
                         {k: str(v) for k, v in overrides.items()})
    return open_task(task_cls, config, data_root, cache, pretrain_data_root=pretrain_root,
                     pretraining=True)


def method_for(task, **overrides) -> Ours:
    config = cfg.resolve("method ours", OursConfig, Ours.profiles, "smoke",
                         {k: str(v) for k, v in overrides.items()})
    return Ours(config, task.spec, torch.device("cpu"))


def key(task, **method_overrides) -> str:
    return pretraining_cache_key(method_for(task, **method_overrides), task,
                                 task.pretraining_cases(), seed=0)


@pytest.fixture(scope="module")
def brats(phantom_cache):
    return open_smoke("brats18_missing", phantom_cache)


def test_fine_tuning_options_keep_the_key(brats):
    base = key(brats)
    assert key(brats, steps=7, lr=0.01, finetune_w_invariance=0, missing_fill="zero",
               mode="encoder_only", diagnose=False) == base
    assert key(brats, w_invariance=0) != base  # a pre-training option does not


@pytest.mark.parametrize("option, value", [("phantom_size", 36), ("phantom_seed", 3)])
def test_a_different_phantom_gives_a_new_key(brats, phantom_cache, option, value):
    other = open_smoke("brats18_missing", phantom_cache, **{option: value})
    assert [c.case_id for c in other.pretraining_cases()] == \
        [c.case_id for c in brats.pretraining_cases()]  # same ids, other content
    assert key(other) != key(brats)


def test_a_task_window_gives_a_new_key(phantom_cache):
    task = open_smoke("autopet_transfer", phantom_cache)
    wider = open_smoke("autopet_transfer", phantom_cache, ct_max_hu=1500)
    assert key(wider) != key(task)
    assert key(open_smoke("autopet_transfer", phantom_cache)) == key(task)


def test_another_data_root_or_changed_files_give_a_new_key(brats, phantom_cache, tmp_path):
    corpus = brats.pretraining_corpus.root
    roots = []
    for name in ("a", "b"):
        shutil.copytree(corpus, tmp_path / name)
        (tmp_path / name / PHANTOM_MANIFEST).unlink()  # read as real data
        roots.append(tmp_path / name)
    a, b = (open_smoke("brats18_missing", phantom_cache, pretrain_root=root) for root in roots)
    assert a.pretraining_corpus.origin == "real"
    assert key(a) != key(b)  # same case ids, another root
    before = key(a)
    some_file = next(iter(a.pretraining_cases()[0].images.values()))
    stat = some_file.stat()
    os.utime(some_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert key(a) != before


def first_pretraining_batch(task) -> dict:
    """The first smoke pre-training batch of ``task`` (crops as the task gives them) and
    its loss terms: case ids, 8^3 block means of the crops, terms."""
    torch.manual_seed(0)
    method = method_for(task)
    data = task.pretraining_data(task.pretraining_cases(), method.config.roi)
    batch = StepBatches(data, method.config.pretrain_batch_size, seed=0)(0)
    with torch.no_grad():
        _, terms = method.pretraining_loss(batch, torch.Generator().manual_seed(0))
    image = np.asarray(batch["image"], dtype=np.float64)
    blocks = image.reshape(*image.shape[:2], *(s for n in image.shape[2:] for s in (n // 8, 8)))
    return {"case_ids": list(batch["case_id"]),
            "block_means": blocks.mean(axis=(3, 5, 7)).round(8).tolist(),
            "terms": {name: float(value) for name, value in sorted(terms.items())}}


def test_pretraining_code_version_matches_the_golden_first_batch(brats, one_torch_thread):
    """The first pre-training batch and its loss terms at the smoke profile match the
    values recorded for PRETRAINING_CODE_VERSION (within float tolerance)."""
    now = first_pretraining_batch(brats)
    golden = json.loads(GOLDEN.read_text())
    if os.environ.get("XHBENCH_RENEW_GOLDEN"):
        assert golden["code_version"] != PRETRAINING_CODE_VERSION, (
            f"{GOLDEN.name} already holds version {PRETRAINING_CODE_VERSION}: bump "
            "PRETRAINING_CODE_VERSION first")
        golden = {"code_version": PRETRAINING_CODE_VERSION, **now}
        GOLDEN.write_text("{\n" + ",\n".join(f" {json.dumps(key)}: {json.dumps(value)}"
                                              for key, value in golden.items()) + "\n}\n")
    changed = (f"pre-training data or losses changed (terms {now['terms']}): bump "
               f"PRETRAINING_CODE_VERSION and renew {GOLDEN.name} (see GOLDEN)")
    assert golden["code_version"] == PRETRAINING_CODE_VERSION, (
        f"{GOLDEN.name} holds version {golden['code_version']}: renew it (see GOLDEN)")
    assert now["case_ids"] == golden["case_ids"], changed
    assert list(now["terms"]) == list(golden["terms"]), changed
    np.testing.assert_allclose(now["block_means"], golden["block_means"], rtol=1e-4,
                               atol=1e-5, err_msg=changed)
    np.testing.assert_allclose(list(now["terms"].values()), list(golden["terms"].values()),
                               rtol=1e-3, atol=1e-5, err_msg=changed)
