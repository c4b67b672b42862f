"""Rank agreement between leaderboard metrics (``xhbench leaderboard --agreement``)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.errors import UsageError
from xhbench.leaderboard.aggregate import ROW_KEYS, Leaderboard
from xhbench.leaderboard.agreement import rank_agreement, render_agreement


def board(values: dict[str, dict[str, list[float]]]) -> Leaderboard:
    """target -> metric -> one mean per row (rows m0, m1, ...); ssim higher is better, the
    errors and drops lower."""
    lines = []
    for target, metrics in values.items():
        for metric, means in metrics.items():
            for i, mean in enumerate(means):
                row = {key: "x" for key in ROW_KEYS} | {"method": f"m{i}"}
                lines.append({**row, "target": target, "metric": metric, "mean": mean,
                              "std": 0.0, "n": 6, "seed_std": math.nan})
    stats = pd.DataFrame(lines)
    directions = {"ssim": True, "psnr": True, "drop": False, "suvmax_error": False}
    return Leaderboard("t", pd.DataFrame(), stats, ("target", "metric"), pd.DataFrame(),
                       directions, {}, 0, 0)


def line(table: pd.DataFrame, target: str, metric: str) -> dict:
    (found,) = table[(table.target == target) & (table.metric == metric)].to_dict("records")
    return found


def test_orientation_and_hand_computed_coefficients():
    ssim = [0.1, 0.2, 0.3, 0.4]
    table = rank_agreement(board({"A->B": {
        "ssim": ssim,
        "psnr": [10, 11, 12, 13],                # same order
        "drop": [0.4, 0.3, 0.2, 0.1],            # lower is better: same order as ssim
        "suvmax_error": [0.1, 0.2, 0.3, 0.4]}}), "ssim")  # reversed
    assert line(table, "A->B", "psnr")["kendall_tau"] == pytest.approx(1)
    assert line(table, "A->B", "drop")["spearman_rho"] == pytest.approx(1)
    assert line(table, "A->B", "suvmax_error")["kendall_tau"] == pytest.approx(-1)
    # one adjacent swap among 4: tau = (5 - 1) / 6, rho = 1 - 6 * 2 / (4 * 15)
    swapped = rank_agreement(board({"A->B": {"ssim": ssim, "drop": [0.4, 0.3, 0.1, 0.2]}}),
                             "ssim")
    assert line(swapped, "A->B", "drop")["kendall_tau"] == pytest.approx(4 / 6)
    assert line(swapped, "A->B", "drop")["spearman_rho"] == pytest.approx(0.8)
    assert 0 < line(swapped, "A->B", "drop")["kendall_p"] <= 1


def test_per_target_rows_without_a_value_left_out_and_too_few_rows():
    table = rank_agreement(board({
        "A->B": {"ssim": [0.1, 0.2, 0.3, 0.4], "drop": [0.4, 0.3, math.nan, 0.1]},
        "B->A": {"ssim": [0.1, 0.2], "drop": [0.2, 0.1]},
        "C->C": {"psnr": [1.0, 2.0, 3.0]}}), "ssim")
    assert list(table.target) == ["A->B", "B->A"]  # C->C has no ssim
    assert line(table, "A->B", "drop")["rows"] == 3
    assert line(table, "A->B", "drop")["kendall_tau"] == pytest.approx(1)
    assert line(table, "B->A", "drop")["rows"] == 2
    assert math.isnan(line(table, "B->A", "drop")["kendall_tau"])
    text = render_agreement(table)
    assert "Rank agreement with ssim" in text and "n/a" in text and "+1.000" in text


def test_unknown_metric_is_refused_with_the_known_ones():
    with pytest.raises(UsageError, match="no metric 'ssmi'.*known: drop, ssim"):
        rank_agreement(board({"A->B": {"ssim": [1, 2, 3], "drop": [1, 2, 3]}}), "ssmi")


def test_leaderboard_agreement_option_on_two_smoke_runs(tmp_path):
    runner = CliRunner()
    for method in ("identity", "histmatch"):
        result = runner.invoke(cli, ["run", "--task", "brats23_transfer", "--method", method,
                                     "--profile", "smoke", "--set", "task.pairs=T1->T2",
                                     "--out", str(tmp_path)])
        assert result.exit_code == 0, result.output
    args = ["leaderboard", "--task", "brats23_transfer", "--results", str(tmp_path),
            "--columns", "ssim,psnr"]
    result = runner.invoke(cli, [*args, "--agreement", "ssim"])
    assert result.exit_code == 0, result.output
    assert "| T1->T2   | ssim        | psnr     | 2      | n/a" in result.output
    result = runner.invoke(cli, [*args, "--agreement", "nmse"])  # not among the columns
    assert result.exit_code == 2 and "no metric 'nmse'" in result.output
    result = runner.invoke(cli, [*args, "--agreement", "ssim", "--format", "csv"])
    assert result.exit_code == 2 and "--agreement prints" in result.output
