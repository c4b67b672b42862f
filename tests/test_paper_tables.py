"""Paper-shaped leaderboards (Tables 3, 4, 6, 7, 10) against hand computations."""

from __future__ import annotations

import json
import statistics

import pandas as pd
import pytest

from xhbench.results import RunDir
from xhbench.leaderboard import build_leaderboard
from xhbench.leaderboard.paper_tables import paper_table, render_paper_table, reported_rows
from xhbench.tasks.autopet_seg import TABLES as AUTOPET_SEG_TABLES
from xhbench.tasks.autopet_transfer import AutoPETTransfer
from xhbench.tasks.brats18_missing import TABLES
from xhbench.tasks.hnscc_nsclc_transfer import HNSCC_VAL, NSCLC_SET, HNSCCNSCLCTransfer

TASK = "brats18_missing"


def make_run(root, seed, offset=0.0, config_hash="c" * 64, version="0.1.0", **recorded):
    """Two cases; case A scores setting_id/100, case B 0.02 more, in every region."""
    run = RunDir.create(root, TASK, "toy", seed, config_hash=config_hash)
    run.write_json("config.json", {})
    run.append_rows({"case": case, "setting": str(sid), "target": target, "metric": "dice",
                     "value": sid / 100 + extra + offset}
                    for case, extra in (("A", 0.0), ("B", 0.02))
                    for sid in range(1, 16) for target in ("WT", "TC", "ET", "ET_postpro"))
    run.finish({"run_id": run.path.name, "task": TASK, "task_version": 1, "method": "toy",
                "seed": seed, "profile": "smoke", "config_hash": config_hash,
                "data": {"dataset": "brats18", "origin": "phantom", "split": "test",
                         "split_sha256": "0" * 64, "n_cases": 2},
                "xhbench_version": version, "finished_at": f"2026-01-0{seed + 1}T00:00:00",
                "higher_is_better": {"dice": True}, "conventions": {},
                "tables": [{"name": name, **spec} for name, spec in TABLES.items()],
                **recorded})


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


def test_runs_of_one_method_under_two_configs_stay_two_lines(tmp_path):
    make_run(tmp_path, seed=0)
    make_run(tmp_path, seed=0, offset=0.1, config_hash="d" * 64)
    text = render_paper_table(build_leaderboard(tmp_path, TASK), "table3")
    lines = [line for line in text.splitlines() if line.startswith("| toy")]
    assert [line.split("]")[0] for line in lines] == [
        "| toy [smoke, phantom, config cccccccc, seeds 0",
        "| toy [smoke, phantom, config dddddddd, seeds 0"]
    assert "16.00" in lines[0] and "26.00" in lines[1]  # FM of each run, in percent


def test_ablation_rows_are_named_by_their_recorded_variant(tmp_path):
    make_run(tmp_path, seed=0, variant="C+D+E+I + O@hidden3")
    make_run(tmp_path, seed=0, offset=0.1, config_hash="d" * 64, variant="C+D+E+I, w/o O")
    text = render_paper_table(build_leaderboard(tmp_path, TASK), "table3")
    names = sorted(line.split("]")[0] for line in text.splitlines() if line.startswith("| toy"))
    assert names == ["| toy [smoke, phantom, C+D+E+I + O@hidden3, config cccccccc, seeds 0",
                     "| toy [smoke, phantom, C+D+E+I, w/o O, config dddddddd, seeds 0"]


def test_diagnostics_view_averages_each_diagnostic_over_seeds(tmp_path):
    from click.testing import CliRunner

    from xhbench.cli import cli

    make_run(tmp_path, seed=0, variant="v", diagnostics={"prior_contribution": 0.1})
    make_run(tmp_path, seed=1, variant="v", diagnostics={"prior_contribution": 0.3,
                                                          "xprime_variance_ratio": 0.5})
    make_run(tmp_path, seed=0, config_hash="d" * 64)  # a method that records none
    result = CliRunner().invoke(cli, ["leaderboard", "--task", TASK, "--results", str(tmp_path),
                                      "--diagnostics", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["config"]: row for row in json.loads(result.output)["rows"]}
    assert rows["c" * 12]["prior_contribution"] == pytest.approx(0.2)
    assert rows["c" * 12]["xprime_variance_ratio"] == pytest.approx(0.5)  # one run has it
    assert rows["c" * 12]["variant"] == "v" and rows["c" * 12]["seeds"] == "0,1"
    assert "prior_contribution" not in rows["d" * 12]


def test_runs_of_two_xhbench_versions_do_not_pool_as_seeds(tmp_path):
    make_run(tmp_path, seed=0)
    make_run(tmp_path, seed=1, offset=0.1, version="0.2.0")
    text = render_paper_table(build_leaderboard(tmp_path, TASK), "table3")
    lines = [line for line in text.splitlines() if line.startswith("| toy")]
    assert [line.split("]")[0] for line in lines] == [
        "| toy [smoke, phantom, xhbench 0.1.0, seeds 0",
        "| toy [smoke, phantom, xhbench 0.2.0, seeds 1"]
    assert "16.00" in lines[0] and "26.00" in lines[1]  # not their mean, 21.00


def make_table6_run(root):
    """Cases H1, H2 (HNSCC validation) and N1 (NSCLC); value = base[set] + step[target,
    metric] + 0.1 for H2, so HNSCC cells are base + step + 0.05 ± 0.05 (population std)."""
    task = HNSCCNSCLCTransfer
    run = RunDir.create(root, task.name, "toy", 0, config_hash="e" * 64)
    run.write_json("config.json", {})
    base = {HNSCC_VAL: 0.5, NSCLC_SET: 0.2}
    step = {("NAC->CT", "ssim"): 0.0, ("NAC->AC", "ssim"): 0.01, ("Avg.", "ssim"): 0.02,
            ("NAC->CT", "psnr"): 20.0, ("NAC->AC", "psnr"): 30.0, ("Avg.", "psnr"): 25.0}
    run.append_rows({"case": case, "setting": block, "target": target, "metric": metric,
                     "value": base[block] + value + extra}
                    for case, block, extra in (("H1", HNSCC_VAL, 0.0), ("H2", HNSCC_VAL, 0.1),
                                               ("N1", NSCLC_SET, 0.0))
                    for (target, metric), value in step.items())
    run.finish({"run_id": run.path.name, "task": task.name, "task_version": task.version,
                "method": "toy", "seed": 0, "profile": "smoke", "config_hash": "e" * 64,
                "data": {"dataset": "hnscc", "origin": "phantom",
                         "split": "hnscc:val + nsclc:test", "split_sha256": "1" * 64,
                         "n_cases": 3},
                "xhbench_version": "0.1.0", "finished_at": "2026-01-01T00:00:00",
                "higher_is_better": {"ssim": True, "psnr": True}, "conventions": {},
                "tables": [{"name": name, **spec} for name, spec in task.tables.items()]})


def test_table6_one_block_per_evaluation_set_with_both_metrics(tmp_path):
    make_table6_run(tmp_path)
    board = build_leaderboard(tmp_path, HNSCCNSCLCTransfer.name)
    assert list(board.tables) == ["table6", "uptake"]
    cells = paper_table(board, board.tables["table6"])
    assert len(cells) == 2 * 3 * 2  # blocks x targets x metrics
    hnscc = cells[(cells["column"] == HNSCC_VAL) & (cells["target"] == "NAC->AC")
                  & (cells["metric"] == "psnr")]
    assert float(hnscc["mean"].iloc[0]) == pytest.approx(30.55)
    assert float(hnscc["std"].iloc[0]) == pytest.approx(0.05)
    text = render_paper_table(board, "table6", with_reported=True)
    lines = text.split("\n\n")[0].splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["setting", "row", "ssim NAC->CT", "ssim NAC->AC", "ssim Avg.",
                      "psnr NAC->CT", "psnr NAC->AC", "psnr Avg."]
    body = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [(r[0], r[1].split(" [")[0].split(" — ")[0]) for r in body] == [
        (block, row) for block in (HNSCC_VAL, NSCLC_SET)
        for row in ("toy", "UNETR", "SwinUNETR", "Ours")]
    toy_nsclc = body[4]
    assert toy_nsclc[2:] == ["0.2000 ± 0.0000", "0.2100 ± 0.0000", "0.2200 ± 0.0000",
                             "20.20 ± 0.00", "30.20 ± 0.00", "25.20 ± 0.00"]
    assert body[0][2] == "0.5500 ± 0.0500"  # toy, HNSCC validation, NAC->CT SSIM
    # reported rows in their block: the paper's numbers (cells >= 10 print 2 decimals)
    assert body[2][1] == "SwinUNETR — reported (paper, Table 6)"
    assert body[2][2:] == ["0.5853", "0.9265", "0.7559", "23.56", "42.55", "33.06"]
    assert body[7][1] == "Ours — reported (paper, Table 6)"
    assert body[7][2:] == ["0.4744", "0.8853", "0.6798", "22.78", "42.77", "32.77"]
    reported = reported_rows(board.tables["table6"])
    ours = reported[(reported["method"] == "Ours") & (reported["target"] == "NAC->AC")
                    & (reported["metric"] == "psnr")]
    assert dict(zip(ours["column"], ours["mean"])) == {HNSCC_VAL: 46.4658, NSCLC_SET: 42.7687}
    assert "Data: phantom hnscc hnscc:val + nsclc:test@111111111111, 3 cases" in text


def test_ablation_reported_rows_are_named_by_the_label_template():
    table4 = reported_rows(AutoPETTransfer.tables["table4"])
    assert table4["method"].nunique() == 6
    row = table4[(table4["method"] == "ours + Contrastive + Decomposition + Invariance "
                                      "(pre-training ID 2)")
                 & (table4["target"] == "Avg.") & (table4["metric"] == "psnr")]
    assert float(row["mean"].iloc[0]) == pytest.approx(35.6744)
    table7 = reported_rows(AUTOPET_SEG_TABLES["table7"])
    assert table7["method"].nunique() == 6
    row = table7[(table7["method"] == "ours + Contrastive + Decomposition + Equivariance + O "
                                      "(pre-training ID 4)") & (table7["metric"] == "fpr")]
    assert float(row["mean"].iloc[0]) == pytest.approx(0.1727)  # printed 17.27 (%)
    # the same configuration reads the same in both tables
    assert set(table4["method"]) == set(table7["method"])


def test_table1_reported_cells_fill_from_table1_and_sit_beside_their_method():
    from xhbench.leaderboard.paper_tables import _beside
    from xhbench.tasks.brats23_transfer import BraTS23Transfer

    spec = BraTS23Transfer.tables["table1"]
    reported = reported_rows(spec)

    def cell(method, target, metric):
        row = reported[(reported["method"] == method) & (reported["target"] == target)
                       & (reported["metric"] == metric)]
        assert len(row) == 1, (method, target, metric)
        return row.iloc[0]

    pix = cell("Pix2Pix 2D", "T1->T2", "psnr")  # Table 8's cell wins: it has the std
    assert (pix["mean"], pix["std"]) == (pytest.approx(24.624), pytest.approx(0.962))
    assert pix["source"] == "reported (paper, Table 8, Table 1)"
    assert cell("Pix2Pix 2D", "T1->T1ce", "psnr")["mean"] == pytest.approx(27.05)  # Table 1 only
    diffusion = cell("Diffusion 2D", "T2->FLAIR", "psnr")
    assert diffusion["mean"] == pytest.approx(31.98) and diffusion["std"] != diffusion["std"]
    assert diffusion["source"] == "reported (paper, Table 1)"
    assert {"CUT 2D", "GcGAN 2D", "MD-Diff 2D", "NICEGAN 2D", "EaGAN 3D",
            "MS-SPADE 3D"} <= set(reported["method"])
    # ordering: each measured method's rows, then the reported row of the same method
    reported["row"] = reported["method"] + " — " + reported["source"]
    measured = pd.DataFrame({"method": ["msspade", "toy"], "row": ["msspade [x]", "toy [x]"],
                             "target": "T1->T2", "column": "psnr", "metric": "psnr",
                             "mean": 1.0, "std": 0.0})
    rows = list(dict.fromkeys(_beside(measured, reported, spec["reported"]["beside"])["row"]))
    assert rows[:3] == ["msspade [x]", "MS-SPADE 3D — reported (paper, Table 8, Table 1)",
                        "toy [x]"]
    assert len(rows) == 2 + reported["method"].nunique()


def test_cells_are_of_the_tables_targets_and_metrics_only(tmp_path):
    make_run(tmp_path, seed=0)  # also scores ET_postpro, which table 10 does not print
    board = build_leaderboard(tmp_path, TASK)
    table = paper_table(board, board.tables["table10"])
    assert sorted(set(table["target"])) == ["ET", "TC", "WT"]
    assert set(table["metric"]) == {"dice"} and len(table) == 3 * 15


def test_std_ddof_defaults_to_the_sample_std(tmp_path):
    make_run(tmp_path, seed=0)
    board = build_leaderboard(tmp_path, TASK)
    spec = {key: value for key, value in board.tables["table10"].items() if key != "std_ddof"}
    _, std = cell(paper_table(board, spec), "7")
    assert std == pytest.approx(statistics.stdev([0.07, 0.09]))  # cases A and B


def test_unknown_layout_is_refused_with_the_known_ones(tmp_path):
    from xhbench.errors import UsageError

    make_run(tmp_path, seed=0)
    board = build_leaderboard(tmp_path, TASK)
    message = ("unknown table layout 'grid'; known: setting_groups, per_setting, blocks, "
               "per_target, pairs")
    with pytest.raises(UsageError) as error:
        paper_table(board, {**board.tables["table3"], "layout": "grid"})
    assert str(error.value) == message


def test_a_run_without_a_split_hash_keeps_its_cells_and_seeds_are_listed(tmp_path):
    make_run(tmp_path, seed=0)
    make_run(tmp_path, seed=1, offset=0.1)
    make_run(tmp_path, seed=0, offset=0.2, config_hash="f" * 64,
             data={"dataset": "brats18", "origin": "phantom", "split": "test",
                   "split_sha256": None, "n_cases": 2})
    board = build_leaderboard(tmp_path, TASK)
    for name, column in (("table3", "FM"), ("table10", "15")):
        table = paper_table(board, board.tables[name])
        wt = table[(table["target"] == "WT") & (table["column"] == column)]
        assert sorted(zip(wt["seeds"], wt["mean"].round(6))) == [("0", 0.36), ("0,1", 0.21)]
    text = render_paper_table(board, "table3")
    assert "seeds 0,1]" in text and text.endswith("\n") and "\n- Cells: mean ± std" in text


def test_cell_text_digits_and_missing_values():
    from xhbench.leaderboard.paper_tables import _cell

    assert _cell(float("nan"), 0.1) == ""
    assert _cell(10.0, 0.5) == "10.00 ± 0.50"
    assert _cell(10.5, 0.25) == "10.50 ± 0.25" and _cell(-10.5, float("nan")) == "-10.50"
    assert _cell(9.5, 0.01) == "9.5000 ± 0.0100"  # under 10: four decimals
    assert _cell(0.5, 0.01, percent=True) == "0.50 ± 0.01"
