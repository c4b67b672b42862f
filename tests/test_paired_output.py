"""What ``leaderboard --against`` prints says what was computed: the markdown table and the
JSON document are read back and checked against the comparison table cell by cell (found by
mutation testing, docs/testing.md)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from xhbench.errors import UsageError
from xhbench.leaderboard import build_leaderboard
from xhbench.leaderboard.paired import (PAIRED_FORMAT, attach_paired, paired_comparison,
                                        paired_document, paired_test, render_paired)

from test_paired import BASE, CASES, RANKS, TASK, make_run, per_case


@pytest.fixture
def comparison(tmp_path):
    make_run(tmp_path, "ref", per_case(BASE, BASE))
    make_run(tmp_path, "good", per_case(BASE + RANKS, BASE - RANKS))
    values = per_case(BASE - RANKS, BASE + RANKS)
    values.update({(c, "1", "WT", "nmse"): float("nan") for c in CASES})  # no nmse pair
    make_run(tmp_path, "worse", values)
    return paired_comparison(build_leaderboard(tmp_path, TASK), "ref", resamples=500, seed=3)


def markdown_rows(text: str) -> list[dict[str, str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|"))))
            for line in lines[2:]]


def test_markdown_cells_are_the_table_values(comparison):
    text = render_paired(comparison)
    assert text.startswith("## Paired comparison against ref\n\n")
    rows = markdown_rows(text)
    assert list(rows[0]) == ["method", "target", "metric", "n", "mean diff", "95% CI", "p",
                             "p_holm", "verdict"]
    assert len(rows) == len(comparison.table) == 4
    for row, rec in zip(rows, comparison.table.to_dict("records")):
        arrow = " ↑" if rec["higher_is_better"] else " ↓"
        assert row["method"] == rec["method"] and row["target"] == "WT"
        assert row["metric"] == rec["metric"] + arrow
        assert row["n"] == str(rec["n"])
        if rec["n"] == 0:
            assert row["mean diff"] == row["95% CI"] == row["p"] == row["p_holm"] == "n/a"
            assert row["verdict"] == rec["verdict"] == "n too small"
            continue
        assert row["mean diff"] == f"{rec['mean_diff']:+.4f}"
        assert row["95% CI"] == f"[{rec['ci_low']:+.4f}, {rec['ci_high']:+.4f}]"
        assert row["p"] == f"{rec['p']:.3g}" and row["p_holm"] == f"{rec['p_holm']:.3g}"
        assert row["verdict"] == rec["verdict"]


def test_markdown_notes_state_the_procedure(comparison):
    notes = [line[2:] for line in render_paired(comparison).splitlines()
             if line.startswith("- ")]
    assert notes[0].startswith("Difference = row − ref, per case")
    assert notes[1] == ("95% CI: percentile bootstrap of the mean difference, 500 resamples "
                        "of cases, seed 3.")
    assert notes[2].endswith("per target, metric.")
    assert notes[3].endswith("when p_holm < 0.05; else n.s.")
    assert notes[4].startswith("Reference row: ref (smoke, config cafe0123")
    assert notes[4].endswith("phantom toy test, 8 cases).")


def test_json_document_holds_every_comparison(comparison):
    document = json.loads(render_paired(comparison, "json"))
    assert document == json.loads(json.dumps(paired_document(comparison)))
    assert document["format"] == PAIRED_FORMAT and document["against"] == "ref"
    assert document["group_by"] == ["target", "metric"]
    assert document["bootstrap"] == {"resamples": 500, "seed": 3, "confidence": 0.95,
                                     "interval": "percentile", "statistic": "mean difference"}
    assert document["correction"] == "Holm, across the rows compared, per target, metric"
    assert document["alpha"] == 0.05 and document["left_out"] == []
    assert [r["method"] for r in document["references"]] == ["ref"]
    records = comparison.table.to_dict("records")
    assert len(document["comparisons"]) == len(records)
    for item, rec in zip(document["comparisons"], records):
        assert (item["method"], item["target"], item["metric"]) == \
            (rec["method"], rec["target"], rec["metric"])
        assert item["higher_is_better"] is rec["higher_is_better"]
        assert item["n"] == rec["n"] and item["verdict"] == rec["verdict"]
        for key in ("mean_diff", "p", "p_holm"):
            assert item[key] is None if math.isnan(rec[key]) else item[key] == rec[key]
        expected_ci = [None if math.isnan(rec[k]) else rec[k] for k in ("ci_low", "ci_high")]
        assert item["ci"] == expected_ci


def test_attach_paired_adds_a_section_or_a_key(comparison):
    assert attach_paired("table\n", "markdown", None) == "table\n"
    markdown = attach_paired("table\n", "markdown", comparison)
    assert markdown == "table\n\n" + render_paired(comparison)
    document = json.loads(attach_paired('{"rows": [1]}', "json", comparison))
    assert document["rows"] == [1]
    assert document["paired"] == json.loads(render_paired(comparison, "json"))
    with pytest.raises(UsageError, match="--against prints as markdown or json"):
        attach_paired("x", "latex", comparison)
    with pytest.raises(UsageError, match="prints as markdown or json"):
        render_paired(comparison, "latex")


def test_paired_test_of_known_differences():
    result = paired_test([0.1, 0.2, 0.3, 0.4], resamples=2000, seed=0)
    assert result["n"] == 4 and result["mean_diff"] == pytest.approx(0.25)
    assert result["p"] == pytest.approx(2 / 2**4)  # exact: all four signs positive
    assert 0.1 <= result["ci_low"] < 0.25 < result["ci_high"] <= 0.4
    empty = paired_test(np.empty(0))
    assert empty["n"] == 0
    assert all(math.isnan(empty[k]) for k in ("mean_diff", "ci_low", "ci_high", "p"))


def test_json_document_states_task_and_procedure(comparison):
    document = paired_document(comparison)
    assert document["task"] == TASK
    assert document["difference"] == "row - ref, per case (matched by case id)"
    assert document["case_value"].startswith("mean over the case's lines in the group")
    assert document["case_value"].endswith("only cases with a value in both rows")
    assert document["test"] == ("Wilcoxon signed-rank, two-sided (scipy.stats.wilcoxon, "
                                "zero_method='wilcox'; all-zero differences: p = 1)")
    assert all("label" in item for item in document["comparisons"])
    assert render_paired(comparison, "json").startswith('{\n  "format"')  # indented by 2


def test_markdown_right_aligns_the_numbers(comparison):
    lines = [line for line in render_paired(comparison).splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rule = [cell.strip() for cell in lines[1].strip("|").split("|")]
    numeric = {"n", "mean diff", "95% CI", "p", "p_holm"}
    for name, cell in zip(header, rule):
        right, left = cell.endswith(":") and not cell.startswith(":"), cell.startswith(":")
        assert right if name in numeric else left, (name, cell)


def test_markdown_keeps_the_extra_grouping_keys(tmp_path):
    make_run(tmp_path, "ref", per_case(BASE, split_settings=True))
    make_run(tmp_path, "new", per_case(BASE + RANKS, split_settings=True))
    board = build_leaderboard(tmp_path, TASK, by=("setting",))
    comparison = paired_comparison(board, "ref", resamples=200)
    rows = markdown_rows(render_paired(comparison))
    assert list(rows[0])[:4] == ["method", "setting", "target", "metric"]
    assert sorted(row["setting"] for row in rows) == ["1", "2"]
