"""Paired comparison (``leaderboard --against``) on hand-made run folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.errors import UsageError
from xhbench.results import RunDir
from xhbench.leaderboard import build_leaderboard
from xhbench.leaderboard.paired import (bootstrap_ci, holm, paired_comparison, render_paired,
                                        wilcoxon_p)

TASK = "toy_seg"
CASES = [f"c{i}" for i in range(8)]


def make_run(root, method, values, *, seed=0, profile="smoke", origin="phantom"):
    """A finished run; ``values`` maps (case, setting, target, metric) to a value."""
    run = RunDir.create(root, TASK, method, seed, config_hash="cafe0123")
    run.write_json("config.json", {"method": {}, "task": {}})
    run.append_rows({"case": c, "setting": s, "target": t, "metric": m, "value": v}
                    for (c, s, t, m), v in values.items())
    run.finish({
        "run_id": run.path.name, "task": TASK, "task_version": 1, "method": method,
        "seed": seed, "profile": profile, "config_hash": "cafe0123" * 8,
        "data": {"dataset": "toy", "origin": origin, "split": "test", "split_sha256": "ab" * 32,
                 "n_cases": len(CASES)},
        "xhbench_version": "0.1.0", "finished_at": "2025-01-01T00:00:00",
        "higher_is_better": {"dice": True, "nmse": False}, "conventions": {}, "cost": {},
    })
    return run


def per_case(dice, nmse=None, *, split_settings=False):
    """Rows for WT dice (and nmse); with ``split_settings`` each case value is the mean of
    two settings (value - 0.1 and value + 0.1)."""
    values = {}
    for metric, numbers in (("dice", dice), ("nmse", nmse)):
        if numbers is None:
            continue
        for case, value in zip(CASES, numbers):
            if split_settings:
                values[(case, "1", "WT", metric)] = value - 0.1
                values[(case, "2", "WT", metric)] = value + 0.1
            else:
                values[(case, "1", "WT", metric)] = value
    return values


BASE = np.full(len(CASES), 0.5)
RANKS = np.arange(1, len(CASES) + 1) * 0.01  # distinct magnitudes: exact Wilcoxon


def only(table, **where):
    for key, value in where.items():
        table = table[table[key] == value]
    assert len(table) == 1, table
    return table.iloc[0]


def test_better_on_every_case(tmp_path):
    make_run(tmp_path, "ref", per_case(BASE, BASE, split_settings=True))
    make_run(tmp_path, "good", per_case(BASE + RANKS, BASE - RANKS, split_settings=True))
    result = paired_comparison(build_leaderboard(tmp_path, TASK), "ref")
    dice = only(result.table, method="good", metric="dice")
    assert dice["n"] == 8
    assert dice["mean_diff"] == pytest.approx(RANKS.mean())
    assert 0 < dice["ci_low"] < dice["mean_diff"] < dice["ci_high"]
    assert dice["p"] == pytest.approx(2 / 2**8)  # exact: all eight signs positive
    assert dice["verdict"] == "better"
    # nmse: lower is better, so a negative difference is an improvement
    nmse = only(result.table, method="good", metric="nmse")
    assert nmse["mean_diff"] == pytest.approx(-RANKS.mean()) and nmse["ci_high"] < 0
    assert nmse["verdict"] == "better"


def test_rows_without_a_split_hash_are_compared_like_the_others(tmp_path):
    # external predictions may record no split hash: NaN in the groupby keys, None in the rows
    for method, dice in (("ref", BASE), ("good", BASE + RANKS)):
        run = make_run(tmp_path, method, per_case(dice))
        run.write_json("summary.json", run.summary | {
            "data": run.summary["data"] | {"split_sha256": None}})
    result = paired_comparison(build_leaderboard(tmp_path, TASK), "ref")
    assert result.left_out == [] and result.references[0]["split_sha256"] is None
    dice = only(result.table, method="good", metric="dice")
    assert (dice["n"], dice["p"], dice["verdict"]) == (8, pytest.approx(2 / 2**8), "better")


def test_worse_respects_direction(tmp_path):
    make_run(tmp_path, "ref", per_case(BASE, BASE))
    make_run(tmp_path, "bad", per_case(BASE - RANKS, BASE + RANKS))
    table = paired_comparison(build_leaderboard(tmp_path, TASK), "ref").table
    assert only(table, metric="dice")["verdict"] == "worse"
    assert only(table, metric="nmse")["verdict"] == "worse"
    assert only(table, metric="nmse")["ci_low"] > 0


def test_identical_methods_are_not_significant(tmp_path):
    make_run(tmp_path, "ref", per_case(BASE + RANKS))
    make_run(tmp_path, "same", per_case(BASE + RANKS))
    row = only(paired_comparison(build_leaderboard(tmp_path, TASK), "ref").table,
               metric="dice")
    assert row["p"] == 1.0 and row["p_holm"] == 1.0
    assert row["mean_diff"] == 0 and row["ci_low"] == 0 and row["ci_high"] == 0
    assert row["verdict"] == "n.s."


def test_holm_over_three_methods_matches_a_hand_computation(tmp_path):
    # Exact two-sided Wilcoxon p with n = 8 (2^8 sign patterns), distinct |d| = ranks 1..8:
    #   A: all positive             -> W- = 0 -> p = 2 * 1/256 = 0.0078125
    #   B: rank 1 negative          -> W- = 1 -> p = 2 * 2/256 = 0.015625
    #   C: ranks 1 and 2 negative   -> W- = 3 -> subsets with sum <= 3: {}, {1}, {2}, {3},
    #                                  {1,2} -> p = 2 * 5/256 = 0.0390625
    # Holm, m = 3: A 3 * 0.0078125 = 0.0234375; B max(A, 2 * 0.015625) = 0.03125;
    #              C max(B, 1 * 0.0390625) = 0.0390625.
    signs = {"A": np.ones(8), "B": np.r_[-1, np.ones(7)], "C": np.r_[-1, -1, np.ones(6)]}
    make_run(tmp_path, "ref", per_case(BASE))
    for name, sign in signs.items():
        make_run(tmp_path, name, per_case(BASE + sign * RANKS))
    table = paired_comparison(build_leaderboard(tmp_path, TASK), "ref").table
    expected = {"A": (0.0078125, 0.0234375), "B": (0.015625, 0.03125),
                "C": (0.0390625, 0.0390625)}
    for name, (p, p_holm) in expected.items():
        row = only(table, method=name)
        assert row["p"] == pytest.approx(p)
        assert row["p_holm"] == pytest.approx(p_holm)
        assert row["verdict"] == "better"


def test_holm_function_and_edge_cases():
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = holm([0.02, float("nan"), 0.01])  # NaN is not counted in m
    assert np.isnan(adjusted[1]) and adjusted[[0, 2]] == pytest.approx([0.02, 0.02])
    assert wilcoxon_p([0.0, 0.0, 0.0]) == 1.0
    assert np.isnan(wilcoxon_p([]))
    low, high = bootstrap_ci([1.0, 2.0, 3.0, 4.0], resamples=2000, seed=3)
    assert (low, high) == bootstrap_ci([1.0, 2.0, 3.0, 4.0], resamples=2000, seed=3)
    assert 1.0 <= low < 2.5 < high <= 4.0


def test_nan_cases_are_left_out_of_the_pairs(tmp_path):
    make_run(tmp_path, "ref", per_case(BASE))
    values = per_case(BASE + RANKS)
    values[("c0", "1", "WT", "dice")] = float("nan")
    make_run(tmp_path, "part", values)
    row = only(paired_comparison(build_leaderboard(tmp_path, TASK), "ref").table,
               metric="dice")
    assert row["n"] == 7  # c0 NaN
    assert row["mean_diff"] == pytest.approx(RANKS[1:].mean())


def test_rows_scored_on_other_cases_are_refused(tmp_path):
    make_run(tmp_path, "ref", per_case(BASE))
    make_run(tmp_path, "part", {key: value for key, value in per_case(BASE + RANKS).items()
                                if key[0] != "c7"})
    with pytest.raises(UsageError, match=r"the part row and the ref row were scored on "
                                         r"different cases .*case ids in one only: c7"):
        paired_comparison(build_leaderboard(tmp_path, TASK), "ref")


def test_unknown_reference_is_a_usage_error(tmp_path):
    make_run(tmp_path, "ref", per_case(BASE))
    with pytest.raises(UsageError, match="no finished run of that method"):
        paired_comparison(build_leaderboard(tmp_path, TASK), "nosuch")


def test_rows_on_other_data_are_not_compared(tmp_path):
    make_run(tmp_path, "ref", per_case(BASE))
    make_run(tmp_path, "real_one", per_case(BASE + RANKS), origin="real")
    result = paired_comparison(build_leaderboard(tmp_path, TASK), "ref")
    assert result.table.empty
    assert "real_one" in result.left_out[0]
    assert "Not compared: real_one" in render_paired(result)


def test_cli_markdown_and_json(tmp_path):
    make_run(tmp_path, "ref", per_case(BASE, BASE))
    make_run(tmp_path, "good", per_case(BASE + RANKS, BASE - RANKS))
    runner = CliRunner()
    base = ["leaderboard", "--task", TASK, "--results", str(tmp_path), "--against", "ref"]
    markdown = runner.invoke(cli, base)
    assert markdown.exit_code == 0, markdown.output
    assert "## Paired comparison against ref" in markdown.output
    line = next(l for l in markdown.output.splitlines() if l.startswith("| good") and "dice" in l)
    assert "+0.0450" in line and "better" in line
    document = json.loads(runner.invoke(cli, [*base, "--format", "json"]).output)
    assert document["rows"]  # the leaderboard document is kept
    paired = document["paired"]
    assert paired["against"] == "ref" and paired["bootstrap"]["resamples"] == 10_000
    found = {(c["method"], c["metric"]): c for c in paired["comparisons"]}
    assert found[("good", "nmse")]["verdict"] == "better"
    assert found[("good", "dice")]["ci"][0] > 0
    assert runner.invoke(cli, [*base, "--format", "csv"]).exit_code == 2
    missing = runner.invoke(cli, [*base[:-1], "nosuch"])
    assert missing.exit_code == 2 and "nosuch" in missing.output
