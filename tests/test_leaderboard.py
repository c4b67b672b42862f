"""Leaderboard and compare on hand-made run folders; expected numbers worked out by hand."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.errors import UsageError, XhbenchError
from xhbench.results import RunDir
from xhbench.leaderboard import aggregate, build_leaderboard, compare_leaderboards, to_document
from xhbench.leaderboard.aggregate import ROW_KEYS

TASK = "toy_seg"
SHA = "0123456789abcdef" * 4
NAN = float("nan")


def make_run(root, method, seed, values, *, version=1, origin="phantom", sha=SHA,
             finished=True, train_seconds=10.0, finished_at="2025-01-01T00:00:00",
             task=TASK, folder=None, **summary):
    """A run folder; ``values`` maps (case, setting, target, metric) to a value; ``summary``
    adds or replaces entries of its summary."""
    run = RunDir.create(root, task, method, seed, config_hash="cafe0123")
    if folder:  # a chosen folder name (else a time stamp and a random suffix)
        run = RunDir(run.path.rename(run.path.with_name(folder)))
    run.write_json("config.json", {"method": {}, "task": {}})
    run.append_rows({"case": c, "setting": s, "target": t, "metric": m, "value": v}
                    for (c, s, t, m), v in values.items())
    if finished:
        run.finish({
            "run_id": run.path.name, "task": TASK, "task_version": version, "method": method,
            "seed": seed, "profile": "smoke", "config_hash": "cafe0123" * 8,
            "data": {"dataset": "toy", "origin": origin, "split": "test", "split_sha256": sha,
                     "n_cases": 2},
            "xhbench_version": "0.1.0", "git_revision": None, "device": "cpu",
            **({"finished_at": finished_at} if finished_at else {}),
            "higher_is_better": {"dice": True, "nmse": False},
            "conventions": {"dice": "empty vs empty = 1", "nmse": "over the brain"},
            "cost": {"parameters": 100, "peak_memory_mb": 50.0, "train_seconds": train_seconds,
                     "train_steps": 2 * seed + 4, "train_samples": 4 * seed + 8,
                     "eval_seconds_per_case": 0.5},
        } | summary)
    return run


def two_settings(dice, nmse):
    """Per case: (setting 1, setting 2) values of WT dice and WT nmse."""
    values = {}
    for metric, per_case in (("dice", dice), ("nmse", nmse)):
        for case, pair in per_case.items():
            for setting, value in zip(("1", "2"), pair):
                values[(case, setting, "WT", metric)] = value
    return values


@pytest.fixture
def root(tmp_path):
    # alpha seed 0: dice case values 0.7, 0.9 -> mean 0.8, std 0.1; nmse 0.3, 0.1 -> 0.2, 0.1
    make_run(tmp_path, "alpha", 0, two_settings({"c1": (0.8, 0.6), "c2": (0.9, 0.9)},
                                                {"c1": (0.2, 0.4), "c2": (0.1, 0.1)}))
    # alpha seed 1: dice 0.9, 0.5 -> mean 0.7, std 0.2; nmse 0.3, 0.2 -> 0.25, 0.05
    make_run(tmp_path, "alpha", 1, two_settings({"c1": (0.9, 0.9), "c2": (0.5, 0.5)},
                                                {"c1": (0.3, 0.3), "c2": (0.3, 0.1)}),
             train_seconds=20.0)
    # beta: dice 0.5, 0.3 -> 0.4, 0.1; nmse 0.5, 0.3 -> 0.4, 0.1; ET dice only c1 has a value
    beta = two_settings({"c1": (0.6, 0.4), "c2": (0.3, 0.3)}, {"c1": (0.5, 0.5), "c2": (0.3, 0.3)})
    beta |= {("c1", "1", "ET", "dice"): 0.8, ("c1", "2", "ET", "dice"): NAN,
             ("c2", "1", "ET", "dice"): NAN, ("c2", "2", "ET", "dice"): NAN}
    make_run(tmp_path, "beta", 0, beta)
    # unfinished: must not count
    make_run(tmp_path, "alpha", 2, two_settings({"c1": (0.0, 0.0), "c2": (0.0, 0.0)},
                                                {"c1": (9.0, 9.0), "c2": (9.0, 9.0)}),
             finished=False)
    return tmp_path


def document(root, *args):
    result = CliRunner().invoke(cli, ["leaderboard", "--task", TASK, "--results", str(root),
                                      "--format", "json", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def metric(doc, method, target, name, **extra):
    (row,) = [r for r in doc["rows"] if r["method"] == method and
              all(r[k] == v for k, v in extra.items() if k in r)]
    (entry,) = [m for m in row["metrics"] if m["target"] == target and m["metric"] == name and
                all(m[k] == v for k, v in extra.items() if k in m)]
    return row, entry


def test_pools_seeds_and_averages_settings(root):
    doc = document(root)
    row, dice = metric(doc, "alpha", "WT", "dice")
    assert row["seeds"] == [0, 1] and len(row["run_ids"]) == 2
    assert dice["mean"] == pytest.approx(0.75)      # mean of run means 0.8, 0.7
    assert dice["std"] == pytest.approx(0.15)       # mean of run stds 0.1, 0.2 (ddof=0)
    assert dice["seed_std"] == pytest.approx(0.05)  # std of run means (ddof=0)
    assert dice["n"] == 2 and dice["higher_is_better"] is True
    _, nmse = metric(doc, "alpha", "WT", "nmse")
    assert (nmse["mean"], nmse["std"]) == pytest.approx((0.225, 0.075))
    assert nmse["higher_is_better"] is False
    row, dice = metric(doc, "beta", "WT", "dice")
    assert row["seeds"] == [0]
    assert (dice["mean"], dice["std"]) == pytest.approx((0.4, 0.1))
    assert dice["seed_std"] is None
    _, et = metric(doc, "beta", "ET", "dice")  # NaN setting and NaN case left out
    assert (et["mean"], et["std"], et["n"]) == (pytest.approx(0.8), 0.0, 1)
    assert doc["statistics"]["std_ddof"] == 0
    assert (doc["task"], doc["task_version"], doc["skipped_unfinished"]) == (TASK, 1, 1)
    assert (row["origin"], row["split_sha256"], row["n_cases"]) == ("phantom", SHA, 2)


def test_by_setting_keeps_settings_apart(root):
    doc = document(root, "--by", "setting")
    assert doc["group_by"] == ["setting", "target", "metric"]
    # setting 1: seed 0 cases 0.8, 0.9 (0.85 +- 0.05); seed 1 cases 0.9, 0.5 (0.7 +- 0.2)
    _, dice = metric(doc, "alpha", "WT", "dice", setting="1")
    assert (dice["mean"], dice["std"], dice["seed_std"]) == pytest.approx((0.775, 0.125, 0.075))


def test_aggregate_takes_other_groupings(root):
    board = build_leaderboard(root, TASK)
    cases = board.cases.assign(part=board.cases["setting"].map({"1": "first", "2": "second"}))
    stats = aggregate(cases, ("part", "target", "metric"))
    line = stats[(stats.method == "alpha") & (stats.part == "second") & (stats.metric == "dice")]
    # setting 2: seed 0 cases 0.6, 0.9 (0.75 +- 0.15); seed 1 cases 0.9, 0.5 (0.7 +- 0.2)
    assert (line["mean"].item(), line["std"].item()) == pytest.approx((0.725, 0.175))
    with pytest.raises(UsageError) as error:
        aggregate(cases, ("region", "metric", "organ"))
    assert str(error.value) == (
        "cannot group by region, organ: the per-case tables have columns case, setting, "
        "target, metric, value, " + ", ".join(ROW_KEYS) + ", run_id, seed, part")


def test_a_seed_without_a_value_makes_the_pooled_entry_nan(tmp_path):
    # the pooled mean is over all seeds: a seed with no value for ET leaves the mean, the std
    # and seed_std NaN (and n its 0) rather than standing for the other seed alone
    for seed, et in ((0, (NAN, NAN)), (1, (0.4, 0.6))):
        values = {(case, "1", target, "dice"): value
                  for target, per_case in (("WT", (0.8, 0.9)), ("ET", et))
                  for case, value in zip(("c1", "c2"), per_case)}
        make_run(tmp_path, "alpha", seed, values)
    stats = build_leaderboard(tmp_path, TASK).stats.set_index("target")
    assert stats.loc["WT", ["mean", "std", "n", "seed_std"]].tolist() == pytest.approx(
        [0.85, 0.05, 2, 0.0])
    assert stats.loc["ET", ["mean", "std", "seed_std"]].isna().all()
    assert stats.loc["ET", "n"] == 0


def test_groups_keep_the_order_of_the_per_case_tables(tmp_path):
    # the tasks write WT, TC, ET (not alphabetical); the table's columns follow them
    make_run(tmp_path, "alpha", 0, {("c1", "1", target, metric): 0.5
                                    for target in ("WT", "TC", "ET")
                                    for metric in ("dice", "nmse")})
    board = build_leaderboard(tmp_path, TASK)
    assert list(zip(board.stats["target"], board.stats["metric"])) == [
        (t, m) for t in ("WT", "TC", "ET") for m in ("dice", "nmse")]
    markdown = CliRunner().invoke(cli, ["leaderboard", "--task", TASK, "--results",
                                        str(tmp_path)], catch_exceptions=False).output
    header = [cell.strip() for cell in markdown.splitlines()[0].split("|")][1:-1]
    assert header[-6:] == ["WT dice ↑", "WT nmse ↓", "TC dice ↑", "TC nmse ↓", "ET dice ↑",
                           "ET nmse ↓"]


def test_a_run_without_a_split_hash_keeps_its_row(tmp_path):
    # external predictions (xhbench evaluate) may record no split hash: the row must stay
    make_run(tmp_path, "alpha", 0, two_settings({"c1": (0.8, 0.6), "c2": (0.9, 0.9)},
                                                {"c1": (0.2, 0.4), "c2": (0.1, 0.1)}), sha=None)
    board = build_leaderboard(tmp_path, TASK)
    assert board.rows["method"].tolist() == ["alpha"]
    row, dice = metric(to_document(board), "alpha", "WT", "dice")
    assert row["split_sha256"] is None and dice["mean"] == pytest.approx(0.8)
    markdown = CliRunner().invoke(cli, ["leaderboard", "--task", TASK, "--results",
                                        str(tmp_path)], catch_exceptions=False).output
    assert "| alpha " in markdown


def test_cost_diagnostics_and_conventions_of_the_runs(tmp_path):
    values = two_settings({"c1": (0.8, 0.6), "c2": (0.9, 0.9)}, {"c1": (0.2, 0.4), "c2": (0.1, 0.1)})
    sampling = {"steps": 50, "sampling_steps": 40, "seconds_per_case": 3.0}
    make_run(tmp_path, "alpha", 0, values, diagnostics={"prior": 0.2, "steps": 3, "flag": True,
                                                        "note": "x"},
             cost={"train_seconds": 10.0, "sampling": sampling})
    make_run(tmp_path, "alpha", 1, values, diagnostics={"prior": 0.4},
             cost={"train_seconds": 30.0, "sampling": sampling | {"seconds_per_case": 5.0}})
    make_run(tmp_path, "alpha", 0, values, version=2, conventions={"dice": "a later rule"},
             cost=None)
    make_run(tmp_path, "alpha", 0, values, version=3)
    board = build_leaderboard(tmp_path, TASK, allow_mixed_versions=True)
    row, new, _ = board.rows.sort_values("task_version").to_dict("records")
    # numbers only (a bool or a string is no diagnostic), each over the runs that have it
    assert row["diagnostics"] == pytest.approx({"prior": 0.3, "steps": 3.0})
    assert (row["train_seconds"], row["sampling_steps"], row["sampling_seconds_per_case"]) == (
        pytest.approx(20.0), pytest.approx(40.0), pytest.approx(4.0))
    assert all(pd.isna(new[field]) for field in ("train_seconds", "sampling_steps",
                                                 "parameters"))
    # texts in the order of their first task version, whatever the folders' order
    assert board.conventions == {"dice": "task v1,3: empty vs empty = 1; task v2: a later rule",
                                 "nmse": "over the brain"}


def test_runs_that_disagree_on_a_direction_are_refused(root):
    run = make_run(root, "gamma", 0, {("c1", "1", "WT", "dice"): 0.5},
                   higher_is_better={"dice": False})
    with pytest.raises(XhbenchError) as error:
        build_leaderboard(root, TASK)
    assert str(error.value) == ("runs disagree on whether higher dice is better "
                                f"(run {run.path.name} says False)")


def test_unfinished_runs_are_skipped_and_counted(root):
    result = CliRunner().invoke(cli, ["leaderboard", "--task", TASK, "--results", str(root)])
    assert result.exit_code == 0, result.output
    assert "Skipped 1 unfinished run" in result.stderr
    assert "Skipped 1 unfinished run" in result.stdout


def test_rerun_of_a_seed_replaces_the_earlier_run(root):
    make_run(root, "beta", 0, two_settings({"c1": (0.2, 0.2), "c2": (0.4, 0.4)},
                                           {"c1": (0.1, 0.1), "c2": (0.1, 0.1)}),
             finished_at="2025-01-02T00:00:00")
    doc = document(root)
    row, dice = metric(doc, "beta", "WT", "dice")
    assert row["seeds"] == [0] and doc["superseded_runs"] == 1
    assert (dice["mean"], dice["std"]) == pytest.approx((0.3, 0.1))


@pytest.mark.parametrize("later", ["z-run", "a-run"])
def test_the_last_finished_run_of_a_seed_counts_whatever_its_folder_name(root, later):
    # the later finish counts, whichever folder sorts first; a summary without finished_at
    # counts as the earliest
    earlier = "a-run" if later == "z-run" else "z-run"
    make_run(root, "beta", 0, two_settings({"c1": (0.2, 0.2), "c2": (0.4, 0.4)},
                                           {"c1": (0.1, 0.1), "c2": (0.1, 0.1)}),
             finished_at="2025-01-03T00:00:00", folder=later)
    make_run(root, "beta", 0, two_settings({"c1": (0.9, 0.9), "c2": (0.9, 0.9)},
                                           {"c1": (0.1, 0.1), "c2": (0.1, 0.1)}),
             finished_at="2025-01-02T00:00:00", folder=earlier)
    make_run(root, "beta", 0, two_settings({"c1": (0.0, 0.0), "c2": (0.0, 0.0)},
                                           {"c1": (0.1, 0.1), "c2": (0.1, 0.1)}),
             finished_at=None, folder="m-run")
    board = build_leaderboard(root, TASK)
    assert board.superseded == 3
    (run_ids,) = board.rows.loc[board.rows["method"] == "beta", "run_ids"]
    assert run_ids == [later]
    _, dice = metric(to_document(board), "beta", "WT", "dice")
    assert dice["mean"] == pytest.approx(0.3)


def test_mixed_task_versions_refused_unless_allowed(root):
    make_run(root, "beta", 0, two_settings({"c1": (0.1, 0.1), "c2": (0.1, 0.1)},
                                           {"c1": (0.1, 0.1), "c2": (0.1, 0.1)}), version=2)
    with pytest.raises(UsageError) as error:
        build_leaderboard(root, TASK)
    assert str(error.value) == (
        "results of task 'toy_seg' mix task versions (version 1: 3 runs, version 2: 1 runs); "
        "pass --allow-mixed-versions to show them as separate rows")
    result = CliRunner().invoke(cli, ["leaderboard", "--task", TASK, "--results", str(root)])
    assert result.exit_code == 2 and "--allow-mixed-versions" in result.output
    doc = document(root, "--allow-mixed-versions")
    assert doc["task_version"] is None and doc["task_versions"] == [1, 2]
    _, old = metric(doc, "beta", "WT", "dice", task_version=1)
    _, new = metric(doc, "beta", "WT", "dice", task_version=2)
    assert (old["mean"], new["mean"]) == pytest.approx((0.4, 0.1))


@pytest.mark.parametrize("data", [{"origin": "real"}, {"sha": "f" * 64}])
def test_origin_and_split_are_never_pooled(root, data):
    make_run(root, "alpha", 0, two_settings({"c1": (0.1, 0.1), "c2": (0.1, 0.1)},
                                            {"c1": (0.1, 0.1), "c2": (0.1, 0.1)}), **data)
    doc = document(root)
    alphas = [r for r in doc["rows"] if r["method"] == "alpha"]
    assert sorted(len(r["seeds"]) for r in alphas) == [1, 2]
    _, dice = metric(doc, "alpha", "WT", "dice", origin="phantom", split_sha256=SHA)
    assert dice["mean"] == pytest.approx(0.75)


def test_all_formats_render(root):
    def output(fmt, *args):
        result = CliRunner().invoke(cli, ["leaderboard", "--task", TASK, "--results", str(root),
                                          "--format", fmt, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    markdown = output("markdown")
    assert "0.7500 ± 0.1500" in markdown
    assert "WT dice ↑" in markdown and "WT nmse ↓" in markdown
    assert f"test@{SHA[:12]}" in markdown and "phantom" in markdown and "ddof=0" in markdown
    table = pd.read_csv(io.StringIO(output("csv")))
    alpha = table[(table.method == "alpha") & (table.target == "WT") & (table.metric == "dice")]
    assert alpha["mean"].tolist() == pytest.approx([0.75])
    assert alpha["seeds"].tolist() == ["0,1"]
    latex = output("latex", "--cost")
    assert r"\begin{tabular}" in latex and r"$0.7500 \pm 0.1500$" in latex and "s/case" in latex
    row, _ = metric(json.loads(output("json", "--cost")), "alpha", "WT", "dice")
    assert row["cost"]["train_seconds"] == pytest.approx(15.0)
    assert row["cost"]["train_steps"] == 5 and row["cost"]["train_samples"] == 10  # seeds 0, 1
    wide = output("markdown", "--cost")
    header = [cell.strip() for cell in wide.splitlines()[0].split("|")]
    assert header[-6:-1] == ["peak MB", "steps", "crops", "train s", "s/case"]


def test_no_finished_runs_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["leaderboard", "--task", TASK, "--results", str(tmp_path)])
    assert result.exit_code == 2 and "no finished runs" in result.output
    make_run(tmp_path, "alpha", 0, {}, finished=False)
    make_run(tmp_path, "alpha", 0, {("c1", "1", "WT", "dice"): 0.5}, task="other_task")
    with pytest.raises(UsageError) as error:
        build_leaderboard(tmp_path, TASK)
    assert str(error.value) == f"no finished runs of task 'toy_seg' under {tmp_path} (1 unfinished)"


def test_runs_of_other_tasks_under_the_root_are_left_alone(root):
    make_run(root, "gamma", 0, two_settings({"c1": (0.1, 0.1), "c2": (0.1, 0.1)},
                                            {"c1": (0.1, 0.1), "c2": (0.1, 0.1)}),
             task="other_task")
    board = build_leaderboard(root, TASK)
    assert sorted(board.rows["method"]) == ["alpha", "beta"]
    assert set(board.cases["method"]) == {"alpha", "beta"}


def test_unfinished_runs_are_counted_by_state(root):
    make_run(root, "beta", 1, {}, finished=False).write_status("failed", error="boom")
    board = build_leaderboard(root, TASK)
    assert board.skipped_unfinished == 2
    assert board.unfinished_states == {"failed": 1, "unknown": 1}


@pytest.mark.parametrize("newest", ["z-run", "a-run"])
def test_paper_tables_come_from_the_newest_summary(tmp_path, newest):
    old = {"name": "table3", "caption": "old"}
    new = {"name": "table3", "caption": "new"}
    make_run(tmp_path, "gamma", 0, two_settings({"c1": (0.1, 0.1)}, {"c1": (0.1, 0.1)}),
             finished_at="2025-01-03T00:00:00", tables=[new], folder=newest)
    make_run(tmp_path, "delta", 0, two_settings({"c1": (0.1, 0.1)}, {"c1": (0.1, 0.1)}),
             finished_at="2025-01-02T00:00:00", tables=[old, {"name": "table9"}],
             folder="a-run" if newest == "z-run" else "z-run")
    make_run(tmp_path, "eps", 0, two_settings({"c1": (0.1, 0.1)}, {"c1": (0.1, 0.1)}),
             finished_at=None, tables=[{"name": "table1"}], folder="m-run")
    assert build_leaderboard(tmp_path, TASK).tables == {"table3": new}


def test_cases_are_one_line_per_row_of_every_counted_run(root):
    board = build_leaderboard(root, TASK)
    cases = board.cases
    # 2 cases x 2 settings x (WT dice, WT nmse), and beta's 4 ET dice lines
    assert len(cases) == 28 and list(cases.index) == list(range(28))
    assert cases.groupby(["method", "seed"]).size().to_dict() == {
        ("alpha", 0): 8, ("alpha", 1): 8, ("beta", 0): 12}


def test_a_summary_that_cannot_be_read_or_lacks_keys_is_named(root):
    run = make_run(root, "gamma", 0, {("c1", "1", "WT", "dice"): 0.5})
    summary = {k: v for k, v in run.summary.items() if k not in ("method", "data")}
    run.file("summary.json").write_text("{not json")
    with pytest.raises(XhbenchError) as error:
        build_leaderboard(root, TASK)
    assert str(error.value).startswith(f"cannot read the summary of {run.path}: ")
    run.write_json("summary.json", summary)
    with pytest.raises(XhbenchError) as error:
        build_leaderboard(root, TASK)
    assert str(error.value) == (f"the summary of {run.path} lacks method, data, data.origin, "
                                "data.dataset, data.split, data.split_sha256, data.n_cases")
    run.write_json("summary.json", summary | {"method": "gamma", "data": {"origin": "phantom"}})
    with pytest.raises(XhbenchError, match="lacks data.dataset, data.split, data.split_sha256, "
                                           "data.n_cases$"):
        build_leaderboard(root, TASK)


def test_an_unreadable_per_case_table_is_named(root):
    run = make_run(root, "gamma", 0, {("c1", "1", "WT", "dice"): 0.5})
    run.file("cases.csv").write_text("")
    with pytest.raises(XhbenchError) as error:
        build_leaderboard(root, TASK)
    assert str(error.value).startswith(f"cannot read the per-case table of {run.path}: ")


@pytest.fixture
def reference(root, tmp_path):
    path = tmp_path / "reference.json"
    path.write_text(json.dumps(document(root)))
    return path


def doctored(reference, tmp_path, change):
    doc = json.loads(reference.read_text())
    change(doc)
    path = tmp_path / "current.json"
    path.write_text(json.dumps(doc))
    return path


def set_mean(method, target, name, value):
    def change(doc):
        metric(doc, method, target, name)[1]["mean"] = value
    return change


def run_compare(*args):
    return CliRunner().invoke(cli, ["compare", *map(str, args)])


def test_compare_same_file_passes(reference):
    result = run_compare(reference, reference)
    assert result.exit_code == 0, result.output
    assert "OK: no regressions" in result.output


def test_compare_flags_worse_metric(reference, tmp_path):
    current = doctored(reference, tmp_path, set_mean("alpha", "WT", "dice", 0.65))
    result = run_compare(reference, current)
    assert result.exit_code == 1, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("alpha")]
    assert "WT" in line and "dice" in line and "-0.1" in line and "worse" in line
    assert run_compare(reference, current, "--tolerance-for", "dice=0.2").exit_code == 0


def test_compare_respects_direction(reference, tmp_path):
    better = doctored(reference, tmp_path, set_mean("alpha", "WT", "nmse", 0.1))
    result = run_compare(reference, better)
    assert result.exit_code == 0 and "Improvements (1)" in result.output
    worse = doctored(reference, tmp_path, set_mean("alpha", "WT", "nmse", 0.3))
    result = run_compare(reference, worse)
    assert result.exit_code == 1 and "nmse" in result.output


def test_compare_missing_nan_and_fewer_cases_are_regressions(reference, tmp_path):
    def drop_beta(doc):
        doc["rows"] = [r for r in doc["rows"] if r["method"] != "beta"]

    result = run_compare(reference, doctored(reference, tmp_path, drop_beta))
    assert result.exit_code == 1 and "missing in CURRENT" in result.output
    nan = doctored(reference, tmp_path, set_mean("beta", "ET", "dice", None))
    result = run_compare(reference, nan)
    assert result.exit_code == 1 and "NaN in CURRENT" in result.output

    def fewer_cases(doc):
        metric(doc, "alpha", "WT", "dice")[1]["n"] = 1

    result = run_compare(reference, doctored(reference, tmp_path, fewer_cases))
    assert result.exit_code == 1 and "fewer cases with a value (2 -> 1)" in result.output


def test_compare_task_versions_and_bad_files(reference, tmp_path):
    def bump(doc):
        doc["task_version"], doc["task_versions"] = 2, [2]

    bumped = doctored(reference, tmp_path, bump)
    assert run_compare(reference, bumped).exit_code == 2
    assert run_compare(reference, bumped, "--allow-mixed-versions").exit_code == 0
    assert run_compare(reference, tmp_path / "missing.json").exit_code == 2
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = run_compare(reference, broken)
    assert result.exit_code == 2 and "not valid JSON" in result.output
    assert run_compare(reference, reference, "--tolerance-for", "dice").exit_code == 2


def test_compare_api_counts(root):
    doc = to_document(build_leaderboard(root, TASK))
    comparison = compare_leaderboards(doc, doc)
    assert comparison.ok and comparison.unchanged == 5 and not comparison.new


def test_leaderboard_modules_do_not_import_torch():
    code = "import sys, xhbench.leaderboard; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

