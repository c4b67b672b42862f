"""Every paper-table layout rendered in full from a tiny leaderboard computed by hand.

Two methods, three cases whose values sit at ``centre - 0.03``, ``centre`` and
``centre + 0.03``: a cell's mean is its centre, its sample std (ddof 1) exactly 0.03 and
its population std (ddof 0) 0.03 * sqrt(2/3) = 0.0245. The reported numbers come from
small CSV files written in ``tmp_path`` and found where the package keeps its own.
"""

from __future__ import annotations

import dataclasses
import types

import pandas as pd

import pytest

from xhbench.leaderboard import build_leaderboard
from xhbench.leaderboard import paper_tables
from xhbench.leaderboard.paper_tables import (paper_table, paper_table_frame,
                                              render_paper_table, reported_rows)
from xhbench.harness.runner import _stored_table  # the tables as the runner records them
from xhbench.results import RunDir

TASK = "toy_task"
CASES = {"A": -0.03, "B": 0.0, "C": 0.03}
SHA = "0" * 64
DATA_LINE = f"Data: phantom toyset test@{SHA[:12]}, 3 cases, split sha256 {SHA}."
REPORTED_LINE = ("Rows marked 'reported' are the paper's printed numbers: not measured here, "
                 "never pooled with measured rows.")
ADD_LINE = "Add --with-reported to show the paper's numbers beside these."
ALPHA, BETA = "alpha [smoke, phantom, seeds 0]", "beta [smoke, phantom, seeds 0]"


def write_run(root, method, centres, tables, seed=0, config_hash="c" * 64, split="test"):
    """One finished run; ``centres[(setting, target, metric)]`` is the mean of its 3 cases,
    whose offsets are reversed in setting "3" (so the cases' means over settings differ
    less than within each setting)."""
    run = RunDir.create(root, TASK, method, seed, config_hash=config_hash)
    run.write_json("config.json", {})
    run.append_rows({"case": case, "setting": setting, "target": target, "metric": metric,
                     "value": centre + (-offset if setting == "3" else offset)}
                    for (setting, target, metric), centre in centres.items()
                    for case, offset in CASES.items())
    run.finish({"run_id": run.path.name, "task": TASK, "task_version": 1, "method": method,
                "seed": seed, "profile": "smoke", "config_hash": config_hash,
                "data": {"dataset": "toyset", "origin": "phantom", "split": split,
                         "split_sha256": SHA, "n_cases": 3},
                "xhbench_version": "0.1.0", "finished_at": f"2026-01-0{seed + 1}T00:00:00",
                "higher_is_better": {"dice": True, "hd95": False, "psnr": True, "ssim": True},
                "conventions": {}, "tables": [_stored_table(n, s) for n, s in tables.items()]})


@pytest.fixture
def reported_dir(tmp_path, monkeypatch):
    """Reported CSVs are looked up as ``xhbench/data/reported/<file>``: here, in tmp_path."""
    package = tmp_path / "package"
    folder = package / "data" / "reported"
    folder.mkdir(parents=True)

    def files(name):
        assert name == "xhbench"
        return package

    monkeypatch.setattr(paper_tables, "resources", types.SimpleNamespace(files=files))
    return folder


# --- the setting layouts: settings "1", "2", "3"; beta has no setting "3" -----------------

REGIONS = {"Whole tumor": "WT", "Tumor core": "TC"}
SETTING_REPORTED = {"file": "settings.csv", "target_column": "region", "targets": REGIONS,
                    "group_column": "setting", "beside": {"alpha": "Paper"}}
SETTING_TABLES = {
    "groups": {"title": "Groups", "layout": "setting_groups", "metric": "dice",
               "targets": ["WT", "TC"], "groups": {"Second": [2], "Both": ["1", "2"]},
               "scale": 100, "note": "A note under the table.",
               "reported": {"file": "groups.csv", "target_column": "region",
                            "targets": REGIONS, "group_column": "group"}},
    "per_setting": {"title": "Per setting", "layout": "per_setting", "metric": "dice",
                    "targets": ["WT", "TC"], "columns": ["2", "1"], "scale": 100.0,
                    "std_ddof": 0, "reported": SETTING_REPORTED},
    "blocks": {"title": "Blocks", "layout": "blocks", "metric": ["hd95", "dice"],
               "targets": ["WT", "TC"], "columns": ["2", "1"]},
    "per_target": {"title": "Per target", "layout": "per_target",
                   "metric": ["hd95", "dice"], "targets": ["WT", "TC"]},
    # without "columns": the settings in the order the cells come (sorted)
    "per_setting_plain": {"title": "-", "layout": "per_setting", "metric": "dice",
                          "targets": ["WT"]},
    "blocks_plain": {"title": "-", "layout": "blocks", "metric": "dice", "targets": ["WT"]},
}
# the cells: base of the method + 0.1 per setting step + 0.01 for TC + 10 for hd95
BASE = {"alpha": 0.5, "beta": 0.7}
SETTING = {"1": 0.0, "2": 0.1, "3": 0.2}
TARGET = {"WT": 0.0, "TC": 0.01, "ET": 0.02}
METRIC = {"dice": 0.0, "hd95": 10.0}
# a blank std prints the mean alone; a blank value an empty cell; 5 (%) prints 2 decimals
SETTINGS_CSV = """table,region,method,setting,metric,value,std
Table 10,Whole tumor,Paper,1,Dice,55.5,
Table 10,Whole tumor,Paper,2,Dice,65.5,1.5
Table 10,Tumor core,Paper,2,Dice,66.5,2
Table 10,Tumor core,Paper,1,Dice,,
Table 10,Enhancing tumor,Paper,2,Dice,99,1
Table 10,Whole tumor,Paper,2,HD95,9,1
Table 10,Whole tumor,Other,1,Dice,5,
"""
GROUPS_CSV = """table,region,method,group,metric,value,std
Table 3,Whole tumor,Paper,Both,Dice,50,1
Table 3,Tumor core,Paper,Second,Dice,60,
"""


@pytest.fixture
def setting_board(tmp_path, reported_dir):
    (reported_dir / "settings.csv").write_text(SETTINGS_CSV)
    (reported_dir / "groups.csv").write_text(GROUPS_CSV)
    for method, settings in (("alpha", "123"), ("beta", "12")):
        write_run(tmp_path, method, {(s, t, m): BASE[method] + SETTING[s] + TARGET[t] + METRIC[m]
                                     for s in settings for t in TARGET for m in METRIC},
                  SETTING_TABLES)
    return build_leaderboard(tmp_path, TASK)


def assert_table(board, name, header, lines, notes, *, with_reported):
    table, got_notes, names = paper_table_frame(board, name, with_reported=with_reported)
    assert list(table.columns) == header
    assert table.values.tolist() == lines
    assert got_notes == notes
    return names


PAPER10, OTHER10 = "Paper — reported (paper, Table 10)", "Other — reported (paper, Table 10)"


def test_per_setting_lines_per_target_in_table_order_columns_in_spec_order(setting_board):
    # std ddof 0 of centre -+ 0.03 is 0.03 * sqrt(2/3) = 0.0245 -> "2.45" in percent
    notes = ["Per setting",
             "Cells: mean ± std (x100, std ddof=0). One column per setting; std across cases.",
             ADD_LINE, DATA_LINE]
    lines = [["WT", ALPHA, "60.00 ± 2.45", "50.00 ± 2.45", "70.00 ± 2.45"],
             ["WT", BETA, "80.00 ± 2.45", "70.00 ± 2.45", ""],
             ["TC", ALPHA, "61.00 ± 2.45", "51.00 ± 2.45", "71.00 ± 2.45"],
             ["TC", BETA, "81.00 ± 2.45", "71.00 ± 2.45", ""]]
    header = ["target", "row", "2", "1", "3"]
    assert assert_table(setting_board, "per_setting", header, lines, notes,
                        with_reported=False) == set()
    table, default_notes, _ = paper_table_frame(setting_board, "per_setting")
    assert table.values.tolist() == lines and default_notes == notes  # without reported
    # the reported rows: Paper beside alpha (beside), Other after the measured rows of
    # its target; Enhancing tumor and HD95 are not in the table
    names = assert_table(setting_board, "per_setting", header, [
        ["WT", ALPHA, "60.00 ± 2.45", "50.00 ± 2.45", "70.00 ± 2.45"],
        ["WT", PAPER10, "65.50 ± 1.50", "55.50", ""],
        ["WT", BETA, "80.00 ± 2.45", "70.00 ± 2.45", ""],
        ["WT", OTHER10, "", "5.00", ""],
        ["TC", ALPHA, "61.00 ± 2.45", "51.00 ± 2.45", "71.00 ± 2.45"],
        ["TC", PAPER10, "66.50 ± 2.00", "", ""],
        ["TC", BETA, "81.00 ± 2.45", "71.00 ± 2.45", ""],
    ], [*notes[:2], REPORTED_LINE, DATA_LINE], with_reported=True)
    assert names == {PAPER10, OTHER10}


def test_blocks_one_block_per_setting_columns_by_metric_then_target(setting_board):
    # sample std (the default ddof 1) of centre -+ 0.03 is 0.03; hd95 cells >= 10: 2 digits
    lines = [["2", ALPHA, "10.60 ± 0.03", "10.61 ± 0.03", "0.6000 ± 0.0300", "0.6100 ± 0.0300"],
             ["2", BETA, "10.80 ± 0.03", "10.81 ± 0.03", "0.8000 ± 0.0300", "0.8100 ± 0.0300"],
             ["1", ALPHA, "10.50 ± 0.03", "10.51 ± 0.03", "0.5000 ± 0.0300", "0.5100 ± 0.0300"],
             ["1", BETA, "10.70 ± 0.03", "10.71 ± 0.03", "0.7000 ± 0.0300", "0.7100 ± 0.0300"],
             ["3", ALPHA, "10.70 ± 0.03", "10.71 ± 0.03", "0.7000 ± 0.0300", "0.7100 ± 0.0300"]]
    names = assert_table(setting_board, "blocks",
                         ["setting", "row", "hd95 WT", "hd95 TC", "dice WT", "dice TC"], lines,
                         ["Blocks", "Cells: mean ± std (std ddof=1). One block of lines per "
                          "setting; std across cases.", REPORTED_LINE, DATA_LINE],
                         with_reported=True)  # a table without reported numbers
    assert names == set()


def test_setting_layouts_without_columns_order_settings_as_they_come(setting_board):
    table, _, _ = paper_table_frame(setting_board, "per_setting_plain")
    assert list(table.columns) == ["target", "row", "1", "2", "3"]
    table, _, _ = paper_table_frame(setting_board, "blocks_plain")
    assert [tuple(line) for line in table[["setting", "row"]].values] == [
        ("1", ALPHA), ("1", BETA), ("2", ALPHA), ("2", BETA), ("3", ALPHA)]


def test_setting_groups_are_std_over_setting_means_in_the_groups_order(setting_board):
    # the groups in the task's order, not sorted (the summary's JSON sorts its keys)
    # "Both" of alpha WT: settings 1 and 2 average 0.50 and 0.60 -> 55.00 ± 7.07 (0.1/sqrt 2)
    notes = ["Groups", "Cells: mean ± std (x100, std ddof=1). A group's cell is the mean and "
             "std over its settings of the per-setting means across cases.", ADD_LINE,
             DATA_LINE, "A note under the table."]
    header = ["row", "WT Second", "WT Both", "TC Second", "TC Both"]
    measured = [[ALPHA, "60.00", "55.00 ± 7.07", "61.00", "56.00 ± 7.07"],
                [BETA, "80.00", "75.00 ± 7.07", "81.00", "76.00 ± 7.07"]]
    assert_table(setting_board, "groups", header, measured, notes, with_reported=False)
    assert_table(setting_board, "groups", header,
                 [*measured,
                  ["Paper — reported (paper, Table 3)", "", "50.00 ± 1.00", "60.00", ""]],
                 [*notes[:2], REPORTED_LINE, *notes[3:]], with_reported=True)
    # the leaderboard hands paper_tables the task's mapping, read back from the stored pairs
    assert setting_board.tables["groups"]["groups"] == {"Second": [2], "Both": ["1", "2"]}
    assert list(setting_board.tables["groups"]["groups"]) == ["Second", "Both"]
    cells = paper_table(setting_board, setting_board.tables["groups"])
    assert list(zip(cells["method"], cells["target"], cells["column"])) == [
        (m, t, c) for c in ("Second", "Both") for m in ("alpha", "beta") for t in ("TC", "WT")]


def test_per_target_one_column_per_target_and_metric(setting_board):
    # a case's value is its mean over the settings. alpha WT dice: A (0.47 + 0.57 + 0.73)/3
    # = 0.59, B 0.60, C 0.61 -> 0.60 ± 0.01 (setting 3 has its offsets reversed); beta:
    # (0.67 + 0.77)/2 = 0.72, 0.75, 0.78 -> 0.75 ± 0.03
    assert_table(setting_board, "per_target", ["row", "WT hd95", "WT dice", "TC hd95", "TC dice"],
                 [[ALPHA, "10.60 ± 0.01", "0.6000 ± 0.0100", "10.61 ± 0.01", "0.6100 ± 0.0100"],
                  [BETA, "10.75 ± 0.03", "0.7500 ± 0.0300", "10.76 ± 0.03", "0.7600 ± 0.0300"]],
                 ["Per target", "Cells: mean ± std (std ddof=1). Std across cases.", ADD_LINE,
                  DATA_LINE], with_reported=False)


def test_unknown_table_names_the_known_ones(setting_board, tmp_path):
    from xhbench.errors import UsageError

    with pytest.raises(UsageError) as error:
        paper_table_frame(setting_board, "table9")
    assert str(error.value) == ("task toy_task has no table 'table9'; known: groups, "
                                "per_setting, blocks, per_target, per_setting_plain, blocks_plain")
    with pytest.raises(UsageError) as error:
        render_paper_table(dataclasses.replace(setting_board, tables={}), "table9")
    assert str(error.value) == "task toy_task has no table 'table9'; known: none"


def test_rows_alike_but_for_the_split_name_it_in_full(tmp_path):
    tables = {"t": SETTING_TABLES["per_target"]}
    centres = {("1", "WT", m): 0.5 + METRIC[m] for m in METRIC}
    write_run(tmp_path, "alpha", centres, tables, split="validation")
    write_run(tmp_path, "alpha", centres, tables, seed=1, split="test-holdout")
    table, _, _ = paper_table_frame(build_leaderboard(tmp_path, TASK), "t")
    assert sorted(table["row"]) == ["alpha [smoke, phantom, split test-holdout, seeds 1]",
                                    "alpha [smoke, phantom, split validation, seeds 0]"]


# --- the pairs layout: targets "S->T", one setting ----------------------------------------

PAIRS = ["T2->T1", "T1->T2", "T1->FLAIR", "T2->FLAIR"]  # sources T2, T1; names T1, T2, FLAIR
PAIR_REPORTED = {"file": "pairs.csv", "pair_columns": ["source", "target"]}
PAIR_TABLES = {
    "pairs": {"title": "Pairs", "layout": "pairs", "metric": ["psnr", "ssim"], "targets": PAIRS,
              "reported": {**PAIR_REPORTED, "rename": {"Flair": "FLAIR"},
                           "beside": {"alpha": "Paper 3D", "beta": "Paper 3D"}}},
    # the same cells one column per target, reported modality names as printed
    "wide": {"title": "Wide", "layout": "per_target", "metric": "psnr",
             "targets": ["T1->T2", "T1->FLAIR"], "reported": PAIR_REPORTED},
}
PAIR = dict(zip(PAIRS, (0.1, 0.2, 0.3, 0.4)))
PAIRS_CSV = """table,dimension,method,source,target,metric,value,std
Table 2,3D,Paper,T1,T2,PSNR,25.5,1.25
Table 2,3D,Paper,T1,T2,SSIM,0.9,
Table 2,3D,Paper,T1,Flair,PSNR,24,
Table 2,3D,Paper,T1,T1ce,PSNR,30,
Table 2,3D,Paper,T2,Flair,NMSE,0.1,
"""


@pytest.fixture
def pair_board(tmp_path, reported_dir):
    """psnr = 20 + 10 (base + pair), ssim = (base + pair) / 2; beta has no T2->T1."""
    (reported_dir / "pairs.csv").write_text(PAIRS_CSV)
    for method, pairs in (("alpha", PAIRS), ("beta", PAIRS[1:])):
        centres = {}
        for pair in pairs:
            centres["full", pair, "psnr"] = 20 + 10 * (BASE[method] + PAIR[pair])
            centres["full", pair, "ssim"] = (BASE[method] + PAIR[pair]) / 2
        write_run(tmp_path, method, centres, PAIR_TABLES)
    return build_leaderboard(tmp_path, TASK)


def test_pairs_one_line_per_row_and_source_in_the_targets_order(pair_board):
    header = ["row", "source", "->T1 psnr", "->T1 ssim", "->T2 psnr", "->T2 ssim",
              "->FLAIR psnr", "->FLAIR ssim"]
    alpha = [[ALPHA, "T2", "26.00 ± 0.03", "0.3000 ± 0.0300", "", "", "29.00 ± 0.03",
              "0.4500 ± 0.0300"],
             [ALPHA, "T1", "", "", "27.00 ± 0.03", "0.3500 ± 0.0300", "28.00 ± 0.03",
              "0.4000 ± 0.0300"]]
    beta = [[BETA, "T2", "", "", "", "", "31.00 ± 0.03", "0.5500 ± 0.0300"],
            [BETA, "T1", "", "", "29.00 ± 0.03", "0.4500 ± 0.0300", "30.00 ± 0.03",
             "0.5000 ± 0.0300"]]
    notes = ["Pairs", "Cells: mean ± std (std ddof=1). One line per source modality; std "
             "across cases."]
    assert_table(pair_board, "pairs", header, alpha + beta, [*notes, ADD_LINE, DATA_LINE],
                 with_reported=False)
    # "Flair" renamed, the method named with its dimension, placed once (after alpha);
    # T1ce and NMSE are not in the table
    paper = "Paper 3D — reported (paper, Table 2)"
    assert_table(pair_board, "pairs", header,
                 [*alpha, [paper, "T1", "", "", "25.50 ± 1.25", "0.9000", "24.00", ""], *beta],
                 [*notes, REPORTED_LINE, DATA_LINE], with_reported=True)
    # without "rename", "Flair" is no target of the table
    assert_table(pair_board, "wide", ["row", "T1->T2 psnr", "T1->FLAIR psnr"],
                 [[ALPHA, "27.00 ± 0.03", "28.00 ± 0.03"],
                  [BETA, "29.00 ± 0.03", "30.00 ± 0.03"],
                  [paper, "25.50 ± 1.25", ""]],
                 ["Wide", "Cells: mean ± std (std ddof=1). Std across cases.", REPORTED_LINE,
                  DATA_LINE], with_reported=True)


def test_render_is_the_markdown_table_and_the_notes(pair_board):
    text = render_paper_table(pair_board, "wide")
    assert text == render_paper_table(pair_board, "wide", with_reported=False)
    assert text == (
        "| row                             | T1->T2 psnr   | T1->FLAIR psnr   |\n"
        "|:--------------------------------|:--------------|:-----------------|\n"
        "| alpha [smoke, phantom, seeds 0] | 27.00 ± 0.03  | 28.00 ± 0.03     |\n"
        "| beta [smoke, phantom, seeds 0]  | 29.00 ± 0.03  | 30.00 ± 0.03     |\n"
        "\n"
        "- Wide\n"
        "- Cells: mean ± std (std ddof=1). Std across cases.\n"
        f"- {ADD_LINE}\n"
        f"- {DATA_LINE}\n")


# --- reported rows -------------------------------------------------------------------------

def test_reported_rows_in_full_with_prefix_method_column_and_two_files(reported_dir):
    (reported_dir / "a.csv").write_text(
        "table,region,row_name,method,idx,metric,value,std\n"
        "Table 10,Whole tumor,SPA,x,1,Dice,60,2\n"
        "Table 10,Whole tumor,SPA,x,2,Dice,-,-\n")
    (reported_dir / "b.csv").write_text(  # only adds the cells a.csv lacks
        "table,region,row_name,method,idx,metric,value\n"
        "Table 3,Whole tumor,SPA,x,1,Dice,99\n"
        "Table 3,Tumor core,SPA,x,1,Dice,70\n"
        "Table 3,Tumor core,RF,x,1,Dice,40\n")
    spec = {"layout": "per_setting", "metric": "dice", "targets": ["WT", "TC"], "scale": 100,
            "reported": {"file": ["a.csv", "b.csv"], "target_column": "region",
                         "targets": REGIONS, "group_column": "idx",
                         "column_prefix": "paper col ", "method_column": "row_name"}}
    rows = reported_rows(spec)
    assert list(rows.columns) == ["method", "source", "target", "column", "metric", "mean", "std"]
    both, table3 = "reported (paper, Table 10, Table 3)", "reported (paper, Table 3)"
    expected = [["SPA", both, "WT", "paper col 1", "dice", 0.6, 0.02],
                ["SPA", both, "WT", "paper col 2", "dice", None, None],
                ["SPA", both, "TC", "paper col 1", "dice", 0.7, None],
                ["RF", table3, "TC", "paper col 1", "dice", 0.4, None]]
    got = rows.astype(object).where(rows.notna(), None).values.tolist()
    assert [line[:5] for line in got] == [line[:5] for line in expected]
    assert [line[5:] for line in got] == [
        [pytest.approx(m) if m is not None else None, pytest.approx(s) if s is not None else None]
        for *_, m, s in expected]
    assert reported_rows({**spec, "reported": None}).columns.tolist() == list(rows.columns)
    assert reported_rows({k: v for k, v in spec.items() if k != "reported"}).empty


def test_reported_label_template_keeps_blank_fields_blank(reported_dir):
    (reported_dir / "t.csv").write_text("table,config,config_id,weight,metric,value,transfer\n"
                                        "Table 4,full,2,0.50,PSNR,30,Avg.\n"
                                        "Table 4,,3,1.00,PSNR,31,Avg.\n")
    spec = {"layout": "per_target", "metric": "psnr", "targets": ["Avg."],
            "reported": {"file": "t.csv", "target_column": "transfer", "targets": {"Avg.": "Avg."},
                         "label": "ours {config}(ID {config_id}, w {weight})"}}
    # fields as printed: blank stays blank, 0.50 keeps its zero
    assert reported_rows(spec)["method"].tolist() == ["ours full(ID 2, w 0.50)",
                                                      "ours (ID 3, w 1.00)"]


def test_reported_pairs_rename_both_modalities(reported_dir):
    (reported_dir / "p.csv").write_text("table,method,source,target,metric,value\n"
                                        "Table 2,Paper,Flair,T1,PSNR,20\n"
                                        "Table 2,Paper,T1,Flair,PSNR,21\n")
    spec = {"layout": "pairs", "metric": "psnr", "targets": ["FLAIR->T1", "T1->FLAIR"],
            "reported": {"file": "p.csv", "pair_columns": ["source", "target"],
                         "rename": {"Flair": "FLAIR"}}}
    rows = reported_rows(spec)
    assert rows[["method", "target", "column"]].values.tolist() == [
        ["Paper", "FLAIR->T1", "psnr"], ["Paper", "T1->FLAIR", "psnr"]]
    assert rows["mean"].tolist() == [20.0, 21.0]


def test_beside_places_a_reported_row_once_after_the_first_method_naming_it():
    from xhbench.leaderboard.paper_tables import _beside

    def cells(methods, rows):
        return pd.DataFrame({"method": methods, "row": rows, "target": "WT", "column": "1",
                             "metric": "dice", "mean": 0.5, "std": 0.1})

    measured = cells(["alpha", "beta", "gamma"], ["alpha [x]", "beta [x]", "gamma [x]"])
    reported = cells(["Paper", "Other"], ["Paper — r", "Other — r"])
    out = _beside(measured, reported, {"alpha": "Paper", "beta": "Paper"})
    assert out["row"].tolist() == ["alpha [x]", "Paper — r", "beta [x]", "gamma [x]",
                                   "Other — r"]


def test_a_missing_reported_file_or_column_is_named(reported_dir):
    from xhbench.errors import XhbenchError

    spec = {"layout": "per_target", "metric": "psnr", "targets": ["Avg."],
            "reported": {"file": ["t.csv", "gone.csv"], "target_column": "transfer",
                         "targets": {"Avg.": "Avg."}}}
    (reported_dir / "t.csv").write_text("table,method,metric,value,transfer\n"
                                        "Table 4,ours,PSNR,30,Avg.\n")
    with pytest.raises(XhbenchError) as error:
        reported_rows(spec)
    assert str(error.value) == "reported file gone.csv not found in xhbench/data/reported"
    assert reported_rows({**spec, "reported": {**spec["reported"], "file": "t.csv"}}
                         )["mean"].tolist() == [30.0]
    for reported, missing in (
            ({"target_column": "region"}, "region"),
            ({"pair_columns": ["source", "transfer"]}, "source"),
            ({"group_column": "setting", "method_column": "name"}, "setting, name"),
            ({"label": "ours {config} ({method}, ID {config_id})"}, "config, config_id")):
        with pytest.raises(XhbenchError) as error:
            reported_rows({**spec, "reported": {**spec["reported"], "file": "t.csv", **reported}})
        assert str(error.value) == f"reported file t.csv has no column {missing}"
    (reported_dir / "t.csv").write_text("table,name,metric,value,transfer\n"
                                        "Table 4,ours,PSNR,30,Avg.\n")
    with pytest.raises(XhbenchError, match="^reported file t.csv has no column method$"):
        reported_rows({**spec, "reported": {**spec["reported"], "file": "t.csv"}})
    (reported_dir / "t.csv").write_text("table,method,metric,transfer\nTable 4,ours,PSNR,Avg.\n")
    with pytest.raises(XhbenchError, match="^reported file t.csv has no column value$"):
        reported_rows({**spec, "reported": {**spec["reported"], "file": "t.csv"}})
