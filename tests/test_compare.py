"""The regression check between two leaderboard documents (``xhbench compare``) on documents
written by hand: each entry's verdict at its tolerance, the report in full, the refusals."""

from __future__ import annotations

import json

import pytest
from tabulate import tabulate

from xhbench.errors import UsageError
from xhbench.leaderboard import compare_leaderboards
from xhbench.leaderboard.compare import format_comparison, load_leaderboard

TASK = "toy_seg"
SHA = "0123456789abcdef" * 4


def board_doc(entries, *, task=TASK, group_by=("target", "metric"), versions=(1,)):
    """A leaderboard document by hand: ``entries`` maps (method, target, metric) to
    (mean, n, higher_is_better)."""
    rows = {}
    for (method, target, name), (mean, n, higher) in entries.items():
        row = rows.setdefault(method, {"method": method, "profile": "smoke", "origin": "phantom",
                                       "dataset": "toy", "split": "test", "split_sha256": SHA,
                                       "n_cases": 2, "metrics": []})
        row["metrics"].append({"target": target, "metric": name, "mean": mean, "n": n,
                               "higher_is_better": higher})
    return {"format": "xhbench-leaderboard/1", "task": task, "group_by": list(group_by),
            "task_versions": list(versions), "rows": list(rows.values())}


def test_compare_judges_each_entry_at_its_tolerance():
    ref = board_doc({("a", "WT", "dice"): (0.5, 2, True), ("a", "WT", "nmse"): (0.5, 2, False),
                     ("a", "WT", "odd"): (0.5, 2, None), ("a", "TC", "dice"): (0.5, 2, True),
                     ("a", "ET", "dice"): (None, 0, True), ("a", "ET", "nmse"): (0.5, 2, False),
                     ("b", "WT", "dice"): (0.5, 2, True), ("b", "TC", "dice"): (0.5, 2, True),
                     ("b", "ET", "dice"): (float("nan"), 0, True),
                     ("b", "WT", "odd"): (0.5, 2, None), ("b", "TC", "nmse"): (0.5, 0, False),
                     ("b", "TC", "odd"): (0.5, 1, None), ("b", "ET", "nmse"): (0.5, 2, False),
                     ("c", "TC", "dice"): (0.25, 2, True)})
    cur = board_doc({("a", "WT", "dice"): (0.25, 2, True),    # worse by exactly 0.25
                     ("a", "WT", "nmse"): (0.75, 2, False),   # worse by 0.25 (lower is better)
                     ("a", "WT", "odd"): (0.2, 2, None),      # changed, direction unknown
                     ("a", "TC", "dice"): (0.5, 1, True),     # one case fewer
                     ("a", "ET", "dice"): (0.5, 2, True),     # was NaN
                     ("a", "ET", "nmse"): (None, 0, False),   # NaN now
                     ("b", "WT", "dice"): (0.8, 2, True),     # better beyond 0.25
                     ("b", "ET", "dice"): (None, 0, True),    # NaN both: unchanged
                     ("b", "WT", "odd"): (0.5, 2, None),      # same, direction unknown
                     ("b", "TC", "nmse"): (0.5, 0, False),    # no case had a value, still none
                     ("b", "TC", "odd"): (0.5, 0, None),      # its one case lost its value
                     ("b", "ET", "nmse"): (0.95, 1, False),   # worse and a case fewer
                     ("c", "TC", "dice"): (0.5, 2, True),     # better by exactly 0.25
                     ("c", "WT", "dice"): (0.9, 2, True)})    # new
    found = compare_leaderboards(ref, cur, tolerances={"dice": 0.25, "nmse": 0.2})
    assert not found.ok and found.unchanged == 5 and found.tolerance == 1e-6
    assert [(c.key["method"], c.key["target"], c.key["metric"], c.reason, c.delta)
            for c in found.regressions] == [
        ("a", "WT", "nmse", "worse", pytest.approx(0.25)),
        ("a", "WT", "odd", "changed (direction unknown)", pytest.approx(-0.3)),
        ("a", "TC", "dice", "fewer cases with a value (2 -> 1)", 0.0),
        ("a", "ET", "nmse", "NaN in CURRENT", None),
        ("b", "TC", "dice", "missing in CURRENT", None),
        ("b", "TC", "odd", "fewer cases with a value (1 -> 0)", 0.0),
        ("b", "ET", "nmse", "worse; fewer cases with a value (2 -> 1)", pytest.approx(0.45))]
    assert [(c.key["method"], c.key["target"], c.reason, c.reference, c.current)
            for c in found.improvements] == [
        ("a", "ET", "was NaN", None, 0.5), ("b", "WT", "better", 0.5, 0.8)]
    assert found.new == [{"method": "c", "profile": "smoke", "origin": "phantom",
                          "dataset": "toy", "split": "test", "split_sha256": SHA, "n_cases": 2,
                          "target": "WT", "metric": "dice"}]
    # at the default tolerance: 1.5e-6 worse is a regression, 0.5e-6 is not
    for change, regressions in ((1.5e-6, 1), (0.5e-6, 0)):
        slightly = board_doc({("b", "WT", "dice"): (0.5 - change, 2, True)})
        assert len(compare_leaderboards(board_doc({("b", "WT", "dice"): (0.5, 2, True)}),
                                        slightly).regressions) == regressions


def test_format_comparison_in_full():
    ref = board_doc({("a", "WT", "dice"): (0.5, 2, True), ("a", "WT", "nmse"): (0.5, 2, False),
                     ("b", "WT", "dice"): (0.5, 2, True), ("b", "TC", "dice"): (0.5, 2, True)})
    cur = board_doc({("a", "WT", "dice"): (0.4, 2, True), ("a", "WT", "nmse"): (None, 0, False),
                     ("b", "WT", "dice"): (0.55, 2, True), ("c", "WT", "dice"): (0.5, 2, True)})
    text = format_comparison(compare_leaderboards(ref, cur, tolerance=0.01,
                                                  tolerances={"nmse": 0.5, "dice": 0.02}))
    data = f"phantom toy test@{SHA[:12]} n=2"

    def table(*lines):  # the cells by hand, laid out by tabulate
        keys = ("method", "profile", "data", "target", "metric", "reference", "current",
                "delta", "why")
        return tabulate([dict(zip(keys, line)) for line in lines], headers="keys",
                        disable_numparse=True)

    assert text == (
        "Regressions (3):\n" + table(
            ("a", "smoke", data, "WT", "dice", "0.5", "0.4", "-0.1", "worse"),
            ("a", "smoke", data, "WT", "nmse", "0.5", "NaN", "", "NaN in CURRENT"),
            ("b", "smoke", data, "TC", "dice", "0.5", "missing", "", "missing in CURRENT"))
        + "\n\nImprovements (1):\n"
        + table(("b", "smoke", data, "WT", "dice", "0.5", "0.55", "+0.05", "better"))
        + "\n\n0 unchanged within tolerance (0.01 absolute; dice: 0.02; nmse: 0.5); "
        "1 new in CURRENT (not compared).\n\nFAIL: regressions found.\n")
    same = format_comparison(compare_leaderboards(ref, ref))
    assert same == ("4 unchanged within tolerance (1e-06 absolute); 0 new in CURRENT "
                    "(not compared).\n\nOK: no regressions.\n")


def test_compare_refusals_name_the_problem(tmp_path):
    ref = board_doc({("a", "WT", "dice"): (0.5, 2, True)})
    refusals = [
        (board_doc({}, task="other"), "REFERENCE is task 'toy_seg', CURRENT is task 'other'"),
        (board_doc({}, group_by=("setting", "target", "metric")),
         "REFERENCE groups by ['target', 'metric'], CURRENT by ['setting', 'target', 'metric']"),
        (board_doc({}, versions=(2,)), "REFERENCE has task version(s) [1], CURRENT [2]; pass "
                                       "--allow-mixed-versions to compare them anyway")]
    for current, message in refusals:
        with pytest.raises(UsageError) as error:
            compare_leaderboards(ref, current)
        assert str(error.value) == message
    with pytest.raises(UsageError) as error:
        compare_leaderboards(ref, board_doc({("a", "WT", "nmse"): (0.5, 2, False)}),
                             tolerances={"hd95": 1.0, "dice": 1.0, "asd": 1.0})
    assert str(error.value) == ("--tolerance-for names unknown metric(s) asd, hd95; the "
                                "leaderboards have dice, nmse")
    twice = board_doc({("a", "WT", "dice"): (0.5, 2, True)})
    twice["rows"] *= 2
    bad_mean = board_doc({("a", "WT", "dice"): ("0.5", 2, True)})
    no_rows = {key: value for key, value in ref.items() if key != "rows"}
    key = ("{'method': 'a', 'profile': 'smoke', 'origin': 'phantom', 'dataset': 'toy', "
           f"'split': 'test', 'split_sha256': '{SHA}', 'n_cases': 2, 'target': 'WT', "
           "'metric': 'dice'}")
    for current, message in (
            (twice, f"CURRENT has two rows for {key} (they differ only in task or xhbench "
                    "version); compare one version at a time"),
            (bad_mean, f"CURRENT: mean of {key} is not a number"),
            (no_rows, "CURRENT is a malformed leaderboard document (at KeyError('rows'))")):
        with pytest.raises(UsageError) as error:
            compare_leaderboards(ref, current)
        assert str(error.value) == message
    with pytest.raises(UsageError) as error:
        compare_leaderboards(bad_mean, ref)
    assert str(error.value) == f"REFERENCE: mean of {key} is not a number"
    path = tmp_path / "list.json"
    path.write_text("[]")
    with pytest.raises(UsageError) as error:
        load_leaderboard(path)
    assert str(error.value) == (f"{path} is not a leaderboard written by "
                                "`xhbench leaderboard --format json`")
    with pytest.raises(UsageError) as error:
        load_leaderboard(tmp_path / "missing.json")
    assert str(error.value) == f"cannot read {tmp_path / 'missing.json'}: No such file or directory"
    path.write_text("{not json")
    with pytest.raises(UsageError, match=f"^{path} is not valid JSON: Expecting property name"):
        load_leaderboard(path)
    path.write_text(json.dumps(ref))
    assert load_leaderboard(path) == ref


def test_compare_one_method_against_a_published_leaderboard():
    # a re-run of method "a" alone, held against a leaderboard of "a", "b" and "c"
    published = board_doc({("a", "WT", "dice"): (0.5, 2, True),
                           ("a", "TC", "dice"): (0.5, 2, True),
                           ("b", "WT", "dice"): (0.5, 2, True),
                           ("c", "WT", "dice"): (0.5, 2, True)})
    rerun = board_doc({("a", "WT", "dice"): (0.49, 2, True), ("a", "TC", "dice"): (0.6, 2, True),
                       ("d", "WT", "dice"): (0.1, 2, True)})
    whole = compare_leaderboards(published, rerun, tolerance=0.02)
    assert [c.key["method"] for c in whole.regressions] == ["b", "c"]  # missing in CURRENT
    found = compare_leaderboards(published, rerun, tolerance=0.02, methods=["a"])
    assert found.ok and found.unchanged == 1 and found.new == []
    assert [(c.key["target"], c.reason) for c in found.improvements] == [("TC", "better")]
    worse = compare_leaderboards(published, rerun, tolerance=0.005, methods=("a",))
    assert [(c.key["method"], c.key["target"], c.reason) for c in worse.regressions] == [
        ("a", "WT", "worse")]
    with pytest.raises(UsageError) as error:
        compare_leaderboards(published, rerun, methods=("a", "d", "e"))
    assert str(error.value) == ("REFERENCE has no row of method(s) d, e; it has a, b, c")
