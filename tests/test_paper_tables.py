"""Paper-shaped leaderboards (Table 3 / Table 10) against hand computations."""

from __future__ import annotations

import statistics

import pytest

from xhbench.harness.store import RunDir
from xhbench.leaderboard import build_leaderboard
from xhbench.leaderboard.paper_tables import paper_table, render_paper_table, reported_rows
from xhbench.tasks.brats18_missing import TABLES

TASK = "brats18_missing"


def make_run(root, seed, offset=0.0):
    """Two cases; case A scores setting_id/100, case B 0.02 more, in every region."""
    run = RunDir.create(root, TASK, "toy", seed, config_hash="c" * 64)
    run.write_json("config.json", {})
    run.append_rows({"case": case, "setting": str(sid), "target": target, "metric": "dice",
                     "value": sid / 100 + extra + offset}
                    for case, extra in (("A", 0.0), ("B", 0.02))
                    for sid in range(1, 16) for target in ("WT", "TC", "ET", "ET_postpro"))
    run.finish({"run_id": run.path.name, "task": TASK, "task_version": 1, "method": "toy",
                "seed": seed, "profile": "smoke", "config_hash": "c" * 64,
                "data": {"dataset": "brats18", "origin": "phantom", "split": "test",
                         "split_sha256": "0" * 64, "n_cases": 2},
                "xhbench_version": "0.1.0", "finished_at": f"2026-01-0{seed + 1}T00:00:00",
                "higher_is_better": {"dice": True}, "conventions": {},
                "tables": [{"name": name, **spec} for name, spec in TABLES.items()]})


def cell(table, column, target="WT"):
    row = table[(table["target"] == target) & (table["column"] == column)]
    assert len(row) == 1
    return float(row["mean"].iloc[0]), float(row["std"].iloc[0])


def test_table3_groups_are_means_and_sample_stds_over_setting_means(tmp_path):
    make_run(tmp_path, seed=0)
    board = build_leaderboard(tmp_path, TASK)
    table = paper_table(board, board.tables["table3"])
    setting_mean = {sid: sid / 100 + 0.01 for sid in range(1, 16)}  # mean of cases A and B
    groups = {"MN=3": [1, 2, 3, 4], "MN=2": [5, 6, 7, 8, 9, 10], "MN=1": [11, 12, 13, 14],
              "All settings": list(range(1, 16))}
    for column, ids in groups.items():
        values = [setting_mean[i] for i in ids]
        mean, std = cell(table, column)
        assert mean == pytest.approx(statistics.mean(values))
        assert std == pytest.approx(statistics.stdev(values))  # sample SD, as the paper
    mean, std = cell(table, "FM")
    assert mean == pytest.approx(0.16) and std != std  # one setting: no std (NaN)


def test_seeds_pool_as_mean_of_run_values(tmp_path):
    make_run(tmp_path, seed=0)
    make_run(tmp_path, seed=1, offset=0.1)
    board = build_leaderboard(tmp_path, TASK)
    mean, _ = cell(paper_table(board, board.tables["table3"]), "FM")
    assert mean == pytest.approx((0.16 + 0.26) / 2)


def test_table10_per_setting_std_across_cases(tmp_path):
    make_run(tmp_path, seed=0)
    board = build_leaderboard(tmp_path, TASK)
    mean, std = cell(paper_table(board, board.tables["table10"]), "7")
    assert mean == pytest.approx(0.08) and std == pytest.approx(0.01)  # population SD of A, B


def test_reported_rows_are_marked_and_kept_apart(tmp_path):
    make_run(tmp_path, seed=0)
    board = build_leaderboard(tmp_path, TASK)
    reported = reported_rows(board.tables["table3"])
    ours = reported[(reported["method"] == "Ours") & (reported["target"] == "WT")
                    & (reported["column"] == "FM")]
    assert float(ours["mean"].iloc[0]) == pytest.approx(0.9119)  # printed 91.19 (%)
    text = render_paper_table(board, "table3", with_reported=True)
    assert "Ours — reported (paper, Table 3)" in text and "toy [smoke, phantom" in text
    measured_line = next(line for line in text.splitlines() if line.startswith("| toy"))
    assert "91.19" not in measured_line
    assert "16.00" in measured_line  # FM of toy, in percent
