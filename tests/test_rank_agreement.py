"""Rank agreement between leaderboard metrics (``xhbench leaderboard --agreement``)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import kendalltau, spearmanr

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
    leaderboard = board({
        "C->C": {"psnr": [1.0, 2.0, 3.0]},
        "A->B": {"ssim": [0.1, 0.2, 0.3, 0.4], "drop": [0.4, 0.3, math.nan, 0.1]},
        "B->A": {"ssim": [0.1, 0.2], "drop": [0.2, 0.1]}})
    before = leaderboard.stats.copy()
    table = rank_agreement(leaderboard, "ssim")
    pd.testing.assert_frame_equal(leaderboard.stats, before)  # the board is left as it was
    assert list(table.target) == ["A->B", "B->A"]  # C->C has no ssim
    assert line(table, "A->B", "drop")["rows"] == 3
    assert line(table, "A->B", "drop")["kendall_tau"] == pytest.approx(1)
    assert line(table, "B->A", "drop")["rows"] == 2
    too_few = line(table, "B->A", "drop")
    assert all(math.isnan(too_few[key]) for key in ("kendall_tau", "kendall_p", "spearman_rho",
                                                    "spearman_p"))
    alone = rank_agreement(board({"A->B": {"ssim": [0.1, 0.2, 0.3]}, "C->C": {"psnr": [1.0]}}),
                           "ssim")  # no target holds ssim and another metric: no line
    assert alone.empty and list(alone.columns) == list(table.columns)
    text = render_agreement(table)
    assert "Rank agreement with ssim" in text and "n/a" in text and "+1.000" in text


def test_unknown_metric_is_refused_with_the_known_ones():
    leaderboard = board({"A->B": {"ssim": [1, 2, 3], "drop": [1, 2, 3]}})
    for reference, metrics in (("ssmi", None), ("ssim", ["drop", "ssmi"])):
        with pytest.raises(UsageError) as error:
            rank_agreement(leaderboard, reference, metrics)
        assert str(error.value) == ("rank agreement: no metric 'ssmi' in the t leaderboard; "
                                    "known: drop, ssim")


def test_agreement_against_scipy_on_rows_with_ties():
    # B->A comes first in the leaderboard and stays first; "dice" has no recorded direction
    # (taken as higher is better); ``metrics`` picks and orders the compared metrics, skipping
    # the reference and a metric a target lacks; a NaN on either side drops that row
    ssim = [0.5, 0.7, 0.7, 0.2, math.nan, 0.9, 0.4]
    drop = [0.3, 0.1, 0.2, 0.2, 0.4, math.nan, 0.5]
    dice = [0.6, 0.8, 0.9, 0.1, 0.5, 0.2, 0.2]
    table = rank_agreement(board({"B->A": {"ssim": ssim, "drop": drop, "dice": dice},
                                  "A->B": {"dice": [0.1, 0.2, 0.3], "ssim": [3.0, 1.0, 2.0]}}),
                           "ssim", metrics=["dice", "ssim", "drop"])
    assert list(zip(table.target, table.metric)) == [("B->A", "dice"), ("B->A", "drop"),
                                                      ("A->B", "dice")]
    assert set(table.reference) == {"ssim"}
    expected = {("B->A", "dice"): (ssim, dice), ("B->A", "drop"): (ssim, [-v for v in drop]),
                ("A->B", "dice"): ([3.0, 1.0, 2.0], [0.1, 0.2, 0.3])}
    for (target, metric), (x, y) in expected.items():
        pairs = [(a, b) for a, b in zip(x, y) if not (math.isnan(a) or math.isnan(b))]
        tau = kendalltau(*zip(*pairs))  # scipy's default: tau-b, two-sided
        rho = spearmanr(*zip(*pairs))
        found = line(table, target, metric)
        assert found["rows"] == len(pairs)
        assert (found["kendall_tau"], found["kendall_p"], found["spearman_rho"],
                found["spearman_p"]) == pytest.approx((tau.statistic, tau.pvalue,
                                                       rho.statistic, rho.pvalue))
    assert line(table, "A->B", "dice")["kendall_tau"] == pytest.approx(-1 / 3)  # 1 C, 2 D
    assert line(table, "B->A", "drop")["rows"] == 5


def test_a_board_grouped_by_setting_gets_a_line_per_setting_and_target():
    # setting 1 ranks the rows as ssim does, setting 2 in reverse: each setting is its own
    # comparison (once, the first setting's means stood for the whole target)
    lines = [{**{key: "x" for key in ROW_KEYS}, "method": f"m{i}", "setting": setting,
              "target": "WT", "metric": metric, "mean": mean, "std": 0.0, "n": 2,
              "seed_std": math.nan}
             for setting, drops in (("1", [0.3, 0.2, 0.1]), ("2", [0.1, 0.2, 0.3]))
             for metric, means in (("ssim", [0.1, 0.2, 0.3]), ("drop", drops))
             for i, mean in enumerate(means)]
    grouped = Leaderboard("t", pd.DataFrame(), pd.DataFrame(lines), ("setting", "target", "metric"),
                          pd.DataFrame(), {"ssim": True, "drop": False}, {}, 0, 0)
    table = rank_agreement(grouped, "ssim")
    assert list(table.columns[:4]) == ["setting", "target", "reference", "metric"]
    assert table[["setting", "target", "metric", "rows"]].values.tolist() == [
        ["1", "WT", "drop", 3], ["2", "WT", "drop", 3]]
    assert table["kendall_tau"].tolist() == pytest.approx([1, -1])


def test_render_agreement_in_full():
    table = pd.DataFrame([
        {"target": "T1->T2", "reference": "ssim", "metric": "drop", "rows": 4,
         "kendall_tau": 2 / 3, "kendall_p": 0.3333333, "spearman_rho": -0.8,
         "spearman_p": 0.0001234},
        {"target": "T1->T2", "reference": "ssim", "metric": "psnr", "rows": 2,
         "kendall_tau": math.nan, "kendall_p": math.nan, "spearman_rho": math.nan,
         "spearman_p": math.nan}])
    assert render_agreement(table) == (
        "\nRank agreement with ssim per target: Kendall's tau-b and Spearman's rho over the "
        "leaderboard rows (row means; each metric oriented so that larger is better: +1 same "
        "order, -1 reversed; two-sided p; fewer than 3 rows: n/a).\n\n"
        "| target   | reference   | metric   | rows   | kendall_tau   | kendall_p   "
        "| spearman_rho   | spearman_p   |\n"
        "|:---------|:------------|:---------|:-------|:--------------|:------------"
        "|:---------------|:-------------|\n"
        "| T1->T2   | ssim        | drop     | 4      | +0.667        | 0.333       "
        "| -0.800         | 0.000123     |\n"
        "| T1->T2   | ssim        | psnr     | 2      | n/a           | n/a         "
        "| n/a            | n/a          |\n")
    assert render_agreement(table.iloc[:0]) == (
        "No target holds the reference metric and another one.\n")
    assert render_agreement(table.iloc[:1]).startswith("\nRank agreement with ssim per target")
    assert table["kendall_tau"].iloc[0] == 2 / 3  # the input is left as it was


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
