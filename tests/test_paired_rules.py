"""The paired comparison's rules in detail: which reference row a row is compared with, how
rows are labelled and refused, what is passed to the statistics, and the statistics against
references computed here (mutation survivors of ``leaderboard/paired.py``, docs/testing.md)."""

from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np
import pytest
from scipy import stats

from xhbench.errors import UsageError
from xhbench.leaderboard import build_leaderboard
from xhbench.leaderboard.paired import (attach_paired, bootstrap_ci, paired_comparison,
                                        paired_document, paired_test, render_paired,
                                        wilcoxon_p)
from xhbench.results import RunDir

from test_paired import BASE, CASES, RANKS, TASK, only, per_case


def run(root, method, values, *, profile="smoke", config="cafe0123", origin="phantom",
        split_sha256="ab" * 32, n_cases=len(CASES)):
    """A finished run like ``test_paired.make_run``, with the row keys as arguments."""
    folder = RunDir.create(root, TASK, method, 0, config_hash=config)
    folder.write_json("config.json", {"method": {}, "task": {}})
    folder.append_rows({"case": c, "setting": s, "target": t, "metric": m, "value": v}
                       for (c, s, t, m), v in values.items())
    folder.finish({
        "run_id": folder.path.name, "task": TASK, "task_version": 1, "method": method,
        "seed": 0, "profile": profile, "config_hash": config * 8,
        "data": {"dataset": "toy", "origin": origin, "split": "test",
                 "split_sha256": split_sha256, "n_cases": n_cases},
        "xhbench_version": "0.1.0", "finished_at": "2025-01-01T00:00:00",
        "higher_is_better": {"dice": True, "nmse": False}, "conventions": {}, "cost": {},
    })


def compare(root, **kwargs):
    return paired_comparison(build_leaderboard(root, TASK), "ref", **kwargs)


def reference_bootstrap(diff, resamples, seed, confidence):
    """The documented procedure in one draw: ``resamples`` rows of case indices from
    ``numpy.random.default_rng(seed)``, their means, the percentile interval."""
    diff = np.asarray(diff, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(resamples, diff.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    return tuple(np.percentile(means, [tail, 100 - tail]))


# -- statistics ---------------------------------------------------------------------------
@pytest.mark.parametrize("resamples, confidence", [(7, 0.95), (1_000, 0.9), (10_000, 0.95)])
def test_bootstrap_ci_is_the_percentile_interval_of_every_resample(resamples, confidence):
    diff = np.random.default_rng(3).normal(0.2, 1.0, size=12)
    assert bootstrap_ci(diff, resamples=resamples, seed=4, confidence=confidence) == \
        pytest.approx(reference_bootstrap(diff, resamples, 4, confidence), rel=1e-12)


def test_bootstrap_ci_draws_large_samples_in_chunks_of_the_same_stream():
    # 200,000 cases: the resamples are drawn 10 at a time; the interval is that of one draw
    diff = np.random.default_rng(5).normal(size=200_000)
    assert bootstrap_ci(diff, resamples=25, seed=2) == \
        pytest.approx(reference_bootstrap(diff, 25, 2, 0.95), rel=1e-12)


def test_bootstrap_defaults_are_10000_resamples_seed_0_and_95_percent():
    # continuous differences: almost every resample mean is distinct, so one resample more
    # or another seed moves the interval
    diff = np.random.default_rng(6).normal(size=12)
    assert bootstrap_ci(diff) == pytest.approx(reference_bootstrap(diff, 10_000, 0, 0.95),
                                               rel=1e-12)
    result = paired_test(diff)
    assert (result["ci_low"], result["ci_high"]) == bootstrap_ci(diff)


def test_paired_test_passes_its_settings_to_the_interval():
    diff = np.random.default_rng(8).normal(size=10)
    result = paired_test(diff, resamples=300, seed=9, confidence=0.8)
    assert (result["ci_low"], result["ci_high"]) == bootstrap_ci(diff, resamples=300, seed=9,
                                                                 confidence=0.8)
    assert result["n"] == len(diff) and result["mean_diff"] == pytest.approx(diff.mean())


def test_paired_test_of_no_pairs_is_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = paired_test([])
    assert result["n"] == 0
    assert all(np.isnan(result[k]) for k in ("mean_diff", "ci_low", "ci_high", "p"))


def test_wilcoxon_of_equal_nonzero_differences_is_the_exact_two_sided_p():
    # six equal positive differences: W- = 0, exact two-sided p = 2 / 2^6 (ties: scipy's
    # normal approximation; both are far from 1)
    p = wilcoxon_p(np.full(6, 0.1))
    assert p == pytest.approx(stats.wilcoxon(np.full(6, 0.1)).pvalue)
    assert p < 0.05
    assert wilcoxon_p(np.zeros(6)) == 1.0


# -- which rows are compared --------------------------------------------------------------
def test_the_reference_row_of_the_compared_rows_profile_is_used(tmp_path):
    run(tmp_path, "ref", per_case(BASE), profile="smoke")
    run(tmp_path, "ref", per_case(BASE + 0.2), profile="default", config="beef4567")
    run(tmp_path, "good", per_case(BASE + RANKS), profile="smoke")
    comparison = compare(tmp_path)
    assert only(comparison.table, method="good")["mean_diff"] == pytest.approx(RANKS.mean())
    assert [(r["method"], r["profile"], r["config_hash"]) for r in comparison.references] == \
        [("ref", "smoke", "cafe0123cafe")]  # the 12-character short hash


def test_several_reference_rows_with_the_same_profile_are_refused_naming_each(tmp_path):
    run(tmp_path, "ref", per_case(BASE), config="cafe0123")
    run(tmp_path, "ref", per_case(BASE), config="beef4567")
    run(tmp_path, "good", per_case(BASE + RANKS))
    with pytest.raises(UsageError) as error:
        compare(tmp_path)
    found = sorted(re.findall(r"profile smoke, config (\w+), 8 cases", str(error.value)))
    assert found == ["beef4567", "cafe0123"]
    assert re.fullmatch(
        r"--against ref: several rows of ref fit the good row \(profile smoke, config \w{8}, "
        r"8 cases; profile smoke, config \w{8}, 8 cases\); keep one of them in the results "
        r"folder \(or use a separate --results folder\)", str(error.value))


def test_a_method_with_several_rows_is_labelled_by_profile_config_and_origin(tmp_path):
    run(tmp_path, "ref", per_case(BASE), profile="smoke")
    run(tmp_path, "ref", per_case(BASE), profile="default")
    run(tmp_path, "good", per_case(BASE + RANKS), profile="smoke")
    run(tmp_path, "good", per_case(BASE - RANKS), profile="default", config="beef4567")
    run(tmp_path, "solo", per_case(BASE + RANKS))
    table = compare(tmp_path).table
    labels = dict(zip(table["profile"] + "/" + table["method"], table["label"]))
    assert labels == {"smoke/good": "good (smoke, cafe0123, phantom)",
                      "default/good": "good (default, beef4567, phantom)",
                      "smoke/solo": "solo"}


@pytest.mark.parametrize("values, extra, reason", [
    (per_case(BASE), {"origin": "real"}, "no ref row on real toy data"),  # no reference row
    ({}, {}, "no per-case values"),                                        # no case lines
])
def test_rows_that_cannot_be_compared_are_listed_and_the_others_compared(
        tmp_path, values, extra, reason):
    run(tmp_path, "ref", per_case(BASE))
    run(tmp_path, "a_left", values, **extra)
    run(tmp_path, "b_good", per_case(BASE + RANKS))
    run(tmp_path, "c_left", values, **extra)
    comparison = compare(tmp_path)
    assert sorted(comparison.left_out) == [f"a_left: {reason}", f"c_left: {reason}"]
    assert list(comparison.table["method"]) == ["b_good"]


def test_a_metric_the_reference_lacks_has_no_pairs(tmp_path):
    run(tmp_path, "ref", per_case(BASE))
    run(tmp_path, "good", per_case(BASE + RANKS, BASE))
    row = only(compare(tmp_path).table, metric="nmse")
    assert row["n"] == 0 and np.isnan(row["mean_diff"]) and np.isnan(row["p"])
    assert row["verdict"] == "n too small"


def test_six_pairs_are_enough_for_a_verdict(tmp_path):
    run(tmp_path, "ref", {k: v for k, v in per_case(BASE).items() if k[0] in CASES[:6]},
        n_cases=6)
    run(tmp_path, "good", {k: v for k, v in per_case(BASE + RANKS).items()
                           if k[0] in CASES[:6]}, n_cases=6)
    row = only(compare(tmp_path).table, method="good")
    # six positive differences: exact two-sided p = 2 / 64 < 0.05
    assert row["n"] == 6 and row["p"] == pytest.approx(2 / 64)
    assert row["verdict"] == "better"


def test_comparison_passes_its_bootstrap_settings_and_keeps_the_task(tmp_path):
    run(tmp_path, "ref", per_case(BASE))
    run(tmp_path, "good", per_case(BASE + RANKS))
    comparison = compare(tmp_path, resamples=300, seed=5, confidence=0.8)
    row = only(comparison.table, method="good")
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        bootstrap_ci(RANKS, resamples=300, seed=5, confidence=0.8), rel=1e-12)
    assert comparison.task == TASK
    default = compare(tmp_path)
    assert (default.seed, default.resamples, default.confidence) == (0, 10_000, 0.95)
    assert comparison.table["p_holm"].dtype == np.float64


def test_unknown_reference_names_the_task_and_the_methods(tmp_path):
    run(tmp_path, "ref", per_case(BASE))
    run(tmp_path, "good", per_case(BASE + RANKS))
    with pytest.raises(UsageError) as error:
        paired_comparison(build_leaderboard(tmp_path, TASK), "nosuch")
    assert str(error.value) == ("--against nosuch: no finished run of that method for task "
                                f"{TASK} (methods: good, ref)")


# -- rows scored on other cases -----------------------------------------------------------
def test_refusal_lists_five_case_ids_and_counts_the_rest(tmp_path):
    run(tmp_path, "ref", per_case(BASE))
    values = per_case(BASE + RANKS)
    values.update({(f"x{i}", "1", "WT", "dice"): 0.5 for i in range(7)})
    run(tmp_path, "good", values, n_cases=15)
    with pytest.raises(UsageError) as error:
        compare(tmp_path)
    assert str(error.value) == (
        "--against ref: the good row and the ref row were scored on different cases "
        "(good: toy test@abababababab, 15 cases; ref: toy test@abababababab, 8 cases; "
        "case ids in one only: x0, x1, x2, x3, x4 and 2 more); compare runs of the same "
        "data and split (e.g. one --results folder per phantom size)")


@pytest.mark.parametrize("extra, listed", [(5, "x0, x1, x2, x3, x4)"),
                                           (6, "x0, x1, x2, x3, x4 and 1 more)")])
def test_refusal_counts_only_the_ids_beyond_five(tmp_path, extra, listed):
    run(tmp_path, "ref", per_case(BASE))
    values = per_case(BASE + RANKS)
    values.update({(f"x{i}", "1", "WT", "dice"): 0.5 for i in range(extra)})
    run(tmp_path, "good", values, n_cases=8 + extra)
    with pytest.raises(UsageError, match=re.escape(f"case ids in one only: {listed}")):
        compare(tmp_path)


def test_refusal_of_another_split_with_the_same_case_ids(tmp_path):
    run(tmp_path, "ref", per_case(BASE))
    run(tmp_path, "good", per_case(BASE + RANKS), split_sha256="cd" * 32)
    with pytest.raises(UsageError) as error:
        compare(tmp_path)
    assert str(error.value) == (
        "--against ref: the good row and the ref row were scored on different cases "
        "(good: toy test@cdcdcdcdcdcd, 8 cases; ref: toy test@abababababab, 8 cases); "
        "compare runs of the same data and split (e.g. one --results folder per phantom size)")


# -- the printed procedure ----------------------------------------------------------------
def test_markdown_notes_in_full(tmp_path):
    run(tmp_path, "ref", per_case(BASE))
    run(tmp_path, "good", per_case(BASE + RANKS, BASE))  # nmse: no pair (n too small)
    run(tmp_path, "far", per_case(BASE), origin="real")
    comparison = compare(tmp_path, resamples=1_234, seed=2)
    text = render_paired(comparison)
    notes = [line[2:] for line in text.splitlines() if line.startswith("- ")]
    assert notes == [
        "Difference = row − ref, per case, over the cases both rows have (matched by case "
        "id); a case's value is its mean over settings (and over seeds).",
        "95% CI: percentile bootstrap of the mean difference, 1,234 resamples of cases, seed 2.",
        "p: Wilcoxon signed-rank, two-sided (zero differences dropped; all zero: p = 1); "
        "p_holm: Holm-corrected across the methods compared, per target, metric.",
        "verdict: better/worse than ref in the metric's direction (↑ higher is better, ↓ "
        "lower) when p_holm < 0.05; else n.s.",
        "Reference row: ref (smoke, config cafe0123cafe, phantom toy test, 8 cases).",
        "n too small: fewer than 6 paired cases; no two-sided Wilcoxon p can fall below 0.05 "
        "and the interval of so few cases (one: a single point) means nothing. Evaluate on "
        "more cases.",
        "Not compared: far: no ref row on real toy data.",
    ]
    assert text.endswith("\n") and "\n\n- Difference" in text


def test_markdown_without_rows_says_so(tmp_path):
    run(tmp_path, "ref", per_case(BASE))
    run(tmp_path, "far", per_case(BASE), origin="real")
    text = render_paired(compare(tmp_path))
    assert text.startswith("## Paired comparison against ref\n\nNo row to compare.\n\n- ")
    assert "n too small" not in text


def test_json_document_case_value_in_full(tmp_path):
    run(tmp_path, "ref", per_case(BASE))
    run(tmp_path, "good", per_case(BASE + RANKS))
    document = paired_document(compare(tmp_path))
    assert document["case_value"] == (
        "mean over the case's lines in the group (e.g. its settings), then over the row's "
        "runs (seeds); only cases with a value in both rows")
    assert [item["label"] for item in document["comparisons"]] == ["good"]


def test_markdown_and_json_formatting_details(tmp_path):
    cases = [f"c{i:02d}" for i in range(20)]
    ref = {(c, "1", "WT", m): 0.5 for c in cases for m in ("dice", "foo")}
    new = {(c, "1", "WT", m): 0.5 + 0.01 * (i + 1) for i, c in enumerate(cases)
           for m in ("dice", "foo")}
    run(tmp_path, "ref", ref, n_cases=20)
    run(tmp_path, "new", new, n_cases=20)
    comparison = compare(tmp_path, resamples=200)
    text = render_paired(comparison)
    rows = {line.split("|")[3].strip(): [c.strip() for c in line.split("|")]
            for line in text.splitlines() if line.startswith("| new")}
    # 20 positive differences: exact p = 2 / 2^20, printed in lower-case exponent notation
    assert rows["dice ↑"][7] == f"{2 / 2**20:.3g}" == "1.91e-06"
    assert rows["dice ↑"][8] == "1.91e-06"  # Holm per target and metric: one row, unchanged
    assert "foo" in rows and rows["foo"][9] == "differs"  # direction unknown: no arrow
    document = attach_paired('{"rows": []}', "json", comparison)
    assert document.startswith('{\n  "rows": []')  # indented by 2


def test_six_pairs_print_no_small_sample_note(tmp_path):
    run(tmp_path, "ref", {k: v for k, v in per_case(BASE).items() if k[0] in CASES[:6]},
        n_cases=6)
    run(tmp_path, "good", {k: v for k, v in per_case(BASE + RANKS).items()
                           if k[0] in CASES[:6]}, n_cases=6)
    assert "n too small" not in render_paired(compare(tmp_path))


def test_wrong_formats_are_refused_naming_the_choices(tmp_path):
    run(tmp_path, "ref", per_case(BASE))
    run(tmp_path, "good", per_case(BASE + RANKS))
    comparison = compare(tmp_path)
    with pytest.raises(UsageError) as error:
        render_paired(comparison, "csv")
    assert str(error.value) == "the paired comparison (--against) prints as markdown or json"
    with pytest.raises(UsageError) as error:
        attach_paired("x", "csv", comparison)
    assert str(error.value) == "--against prints as markdown or json"


def test_one_reference_row_is_used_whatever_its_profile(tmp_path):
    run(tmp_path, "ref", per_case(BASE), profile="default")
    run(tmp_path, "good", per_case(BASE + RANKS), profile="smoke")
    row = only(compare(tmp_path).table, method="good")
    assert row["mean_diff"] == pytest.approx(RANKS.mean())


def test_wilcoxon_of_differences_all_equal_to_one():
    assert wilcoxon_p(np.ones(6)) == pytest.approx(stats.wilcoxon(np.ones(6)).pvalue)
    assert wilcoxon_p(np.ones(6)) < 0.05


def test_markdown_keeps_three_extra_grouping_keys_in_order(tmp_path):
    for method, offset in (("ref", 0.0), ("new", 0.1)):
        run(tmp_path, method, {(c, s, "WT", "dice"): 0.5 + offset
                               for c in CASES for s in ("1", "2")})
    board = build_leaderboard(tmp_path, TASK)
    board.cases["site"], board.cases["scanner"] = "A", "B"  # columns a task could add
    board = dataclasses.replace(board, group_by=("setting", "site", "scanner", "target",
                                                 "metric"))
    lines = render_paired(paired_comparison(board, "ref", resamples=100)).splitlines()
    header = [cell.strip() for cell in lines[2].strip("|").split("|")]
    assert header[:6] == ["method", "setting", "site", "scanner", "target", "metric"]
