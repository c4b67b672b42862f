"""``xhbench runs list/clean``, and the leaderboard on failed and running runs, missing
folders, mistyped names, ``--columns`` (with diagnostics) and ``--format html``."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.results import RunDir

from test_cli_results import finished_run


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def root(tmp_path):
    """Two finished runs of toy_seg (WT and ET dice), one failed, one running, one
    interrupted."""
    values = {(f"c{i}", t, "dice"): 0.1 * i for i in range(8) for t in ("WT", "ET")}
    finished_run(tmp_path, "ref", values)
    run = finished_run(tmp_path, "ours", values)
    summary = run.summary
    run.finish({**summary, "diagnostics": {"prior_contribution": 0.25}})
    failed = RunDir.create(tmp_path, "toy_seg", "ours", 1, "cafe0123")
    failed.write_json("config.json", {})
    failed.write_status("failed", error="RuntimeError: boom", traceback="x/log.txt")
    running = RunDir.create(tmp_path, "toy_seg", "ours", 2, "cafe0123")
    running.write_json("config.json", {})
    running.write_status("running")
    gone = RunDir.create(tmp_path, "toy_seg", "ours", 3, "cafe0123")
    gone.write_json("config.json", {})
    gone.write_json("status.json", {"state": "running", "host": __import__("socket")
                                    .gethostname(), "pid": 2**22 + 54321})
    return tmp_path


def test_runs_list_by_state(root):
    result = invoke("runs", "list", "--results", str(root))
    assert result.exit_code == 0
    states = sorted(line.split()[0] for line in result.output.splitlines())
    assert states == ["failed", "finished", "finished", "interrupted", "running"]
    failed = invoke("runs", "list", "--results", str(root), "--status", "failed").output
    assert failed.count("\n") == 1 and "RuntimeError: boom (traceback: x/log.txt)" in failed
    assert invoke("runs", "list", "--results", str(root), "--task", "other").exit_code == 0


def test_runs_clean_failed_keeps_the_others(root):
    result = invoke("runs", "clean", "--results", str(root), "--failed", "--yes")
    assert result.exit_code == 0 and "removed 1 run folder(s)" in result.output
    left = invoke("runs", "list", "--results", str(root)).output
    assert sorted(line.split()[0] for line in left.splitlines()) == [
        "finished", "finished", "interrupted", "running"]
    assert invoke("runs", "clean", "--results", str(root)).exit_code == 2  # says what


def test_leaderboard_counts_failed_and_running_runs(root):
    result = invoke("leaderboard", "--task", "toy_seg", "--results", str(root))
    assert result.exit_code == 0
    assert ("Skipped 3 unfinished run(s) (no summary.json): 1 failed, 1 interrupted, "
            "1 running; see `xhbench runs list --task toy_seg`.") in result.output


def test_missing_results_folder_and_mistyped_names(tmp_path, root):
    result = invoke("leaderboard", "--task", "toy_seg", "--results", str(tmp_path / "nope"))
    assert result.exit_code == 2 and "results folder" in result.output
    assert "does not exist" in result.output
    result = invoke("leaderboard", "--task", "toy_sge", "--results", str(root))
    assert result.exit_code == 2 and "Did you mean: toy_seg?" in result.output
    result = invoke("leaderboard", "--task", "brats18_mising", "--results", str(root))
    assert "Did you mean: brats18_missing?" in result.output  # a registered task
    result = invoke("leaderboard", "--task", "toy_seg", "--results", str(root), "--against",
                    "oursx")
    assert result.exit_code == 2 and "Did you mean: ours?" in result.output


def test_columns_pick_groups_and_diagnostics(root):
    result = invoke("leaderboard", "--task", "toy_seg", "--results", str(root), "--columns",
                    "ET,diagnostics")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if line.startswith("|"))
    assert "ET dice" in header and "WT dice" not in header
    diagnostics = result.output.split("Diagnostics")[1]
    ours = next(line for line in diagnostics.splitlines() if "| ours" in line)
    assert "0.25" in ours and "prior_contribution" in diagnostics
    result = invoke("leaderboard", "--task", "toy_seg", "--results", str(root), "--columns",
                    "XX")
    assert result.exit_code == 2 and "known: ET, WT, dice" in result.output


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells, self._in = [], False

    def handle_starttag(self, tag, attrs):
        self._in = tag in ("td", "th")

    def handle_data(self, data):
        if self._in and data.strip():
            self.cells.append(data.strip())


def test_html_is_a_standalone_table(root):
    result = invoke("leaderboard", "--task", "toy_seg", "--results", str(root), "--format",
                    "html")
    assert result.exit_code == 0, result.output
    page = result.output[result.output.index("<!DOCTYPE html>"):]
    assert page.rstrip().endswith("</html>")
    parser = _Cells()
    parser.feed(page)
    assert "WT dice ↑" in parser.cells and "ours" in parser.cells
    assert "0.3500 ± 0.2291" in parser.cells  # mean and population std of 0.0 .. 0.7
