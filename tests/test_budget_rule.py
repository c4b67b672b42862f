"""The budget rule of the default profile (docs/leaderboard.md, "Budget rule"): on each
task, the learned methods train on equal numbers of equal crops and predict with windows of
that size, Swin methods share one window, and every departure is listed once, in
xhbench.methods.budget_rule.EXCEPTIONS. That a run counts what its plan says is checked per
method by tests/test_contract.py (xhbench.testing.check_planned_budget)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.harness.config import resolve
from xhbench.harness.budgets import default_budgets
from xhbench.methods.budget_rule import EXCEPTIONS, rule_breaks
from xhbench.plugins import get_plugins
from xhbench.testing import check_planned_budget
from xhbench.training.budget import PlannedStage, planned_crops

TASKS = [entry.name for entry in get_plugins().registry.entries("task")]


@pytest.mark.parametrize("task", TASKS)
def test_learned_methods_of_a_task_share_one_default_budget(task):
    assert rule_breaks(task, default_budgets(task)) == []


@pytest.mark.parametrize("task", TASKS)
def test_swin_methods_of_a_task_share_one_window(task):
    windows = {b.method: b.swin_window for b in default_budgets(task) if b.swin_window}
    assert len(set(windows.values())) <= 1, windows


def test_every_exception_names_a_method_of_its_task_that_departs():
    for (task, method), reason in EXCEPTIONS.items():
        budgets = {b.method: b for b in default_budgets(task)}
        assert method in budgets, f"{method} is not a learned method of {task}"
        others = [b for name, b in budgets.items() if (task, name) not in EXCEPTIONS]
        common = {(b.crops, b.main.crop) for b in others}
        mine = budgets[method]
        assert {(mine.crops, mine.main.crop)} != common, \
            f"{method} on {task} keeps the common budget; drop its exception ({reason})"


def test_the_segmentation_tasks_budget_is_1200_crops_of_32_cubed():
    for task in ("brats18_missing", "autopet_seg"):
        for budget in default_budgets(task):
            if (task, budget.method) not in EXCEPTIONS:
                assert (budget.crops, budget.main.crop) == (1200, (32, 32, 32)), budget


def test_two_stage_methods_count_the_sum_and_mark_the_extra_stage():
    budgets = {b.method: b for b in default_budgets("brats18_missing")}
    for method in ("ours", "swinunetr_ssl", "m3ae"):
        first, last = budgets[method].stages
        assert first.extra and not last.extra, method
        assert budgets[method].extra_crops == first.steps * first.batch > 0
        assert planned_crops(budgets[method].stages) == first.crops + last.crops


def test_reference_rows_plan_no_training():
    names = {b.method for task in TASKS for b in default_budgets(task)}
    assert not names & {"identity", "histmatch", "threshold"}


def test_list_methods_options_shows_the_default_budget():
    result = CliRunner().invoke(cli, ["list", "methods", "--options", "-q", "swinunetr_ssl"])
    assert result.exit_code == 0, result.output
    assert ("default budget pretrain: 300 steps x batch 2 = 600 crops of 32x32x32 "
            "(extra stage)") in result.output
    assert "default budget train: 600 steps x batch 2 = 1200 crops of 32x32x32" in result.output


def test_planned_and_counted_budgets_must_agree():
    cls = get_plugins().registry.get("method", "ours").load()
    config = resolve("method ours", cls.Config, cls.profiles, "smoke")
    stages = cls.training_plan(config)
    assert [s.name for s in stages] == ["pretrain", "train"]
    counted = {"train_steps": 4, "train_samples": 8}  # 2 + 2 steps of batch 2
    check_planned_budget(cls, config, counted, {"pretraining": {"saved": "x"}})
    # a cached pre-training is not counted by the run
    check_planned_budget(cls, config, {"train_steps": 2, "train_samples": 4},
                         {"pretraining": {"cached": "x"}})
    with pytest.raises(AssertionError, match="counted"):
        check_planned_budget(cls, config, {"train_steps": 2, "train_samples": 4},
                             {"pretraining": {"saved": "x"}})


def test_a_planned_stage_counts_steps_times_batch():
    stage = PlannedStage("train", 7, 3, (8, 8, 8))
    assert stage.crops == 21
    assert stage.describe() == "train: 7 steps x batch 3 = 21 crops of 8x8x8"
    assert planned_crops([stage, PlannedStage("pre", 2, 2, None, extra=True)], extra=True) == 4
