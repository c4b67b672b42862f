"""``xhbench report``: the static site of a results folder, checked as files and in a real
browser (headless Chromium driven by Playwright).

The results folder is synthetic but written through the store (``RunDir``) with the real
tasks' summaries (tables, conventions), so the leaderboard reads it as it reads runs:
brats18_missing (two methods, two seeds of one), autopet_seg (one run), brats23_transfer
(one run, an infinite PSNR among its values) and a failed run folder. Per-case values are
drawn here, so the expected means are computed here.

The browser test needs a Chromium binary (``$XHBENCH_CHROMIUM``, else ``/usr/bin/chromium``)
and the ``playwright`` package; it skips with the reason when either is missing, unless
``XHBENCH_REQUIRE_BROWSER=1`` (set by ``.ci/run``), where it fails. Its screenshot of
index.html is written to ``$XHBENCH_REPORT_ARTIFACTS/index.png`` when that is set, else to
the test's tmp folder (the path is printed).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.curves import write_curves
from xhbench.results import RunDir
from xhbench.tasks.autopet_seg import AutoPETSeg
from xhbench.tasks.brats18_missing import MASKS, BraTS18Missing
from xhbench.tasks.brats23_transfer import BraTS23Transfer

CASES = ["Brats18_A_1", "Brats18_B_1", "Brats18_C_1"]
HISTORY = pd.DataFrame({"stage": ["train"] * 4, "step": [1, 2, 3, 4],
                        "lr": [1e-3, 1e-3, 5e-4, 1e-4], "loss": [1.0, 0.8, 0.7, 0.6],
                        "dice": [0.6, 0.5, 0.45, 0.4]})


class _Data:
    origin = "phantom"


def _summary(task_cls, task, run: RunDir, method: str, seed: int, n: int) -> dict:
    return {"run_id": run.path.name, "task": task_cls.name, "task_version": task_cls.version,
            "method": method, "seed": seed, "profile": "smoke", "config_hash": f"{method:0<12}",
            "data": {"dataset": task_cls.dataset, "origin": "phantom", "split": "test",
                     "split_sha256": "ab" * 32, "n_cases": n, "skipped_cases": 0},
            "xhbench_version": "0.1.0", "finished_at": f"2026-12-04T10:0{seed}:00+00:00",
            "higher_is_better": task.higher_is_better(), "conventions": task.conventions(),
            "tables": [{"name": name, **spec} for name, spec in task_cls.tables.items()],
            "cost": {"train_seconds": 10.0 + seed, "parameters": 1000}}


def _write_run(root: Path, task_cls, method: str, seed: int, rows: list[dict]) -> RunDir:
    task = task_cls(task_cls.Config(), _Data())
    run = RunDir.create(root, task_cls.name, method, seed, f"{method:0<12}")
    run.write_json("config.json", {"task": task_cls.name, "method": method, "seed": seed,
                                   "profile": "smoke", "config_hash": f"{method:0<12}"})
    run.write_json("environment.json", {"python": "3.x", "torch": "2.13.0"})
    run.write_json("cost.json", {"train_seconds": 10.0 + seed})
    for case in dict.fromkeys(row["case"] for row in rows):
        run.record_case(case, [row for row in rows if row["case"] == case])
    HISTORY.to_csv(run.file("history.csv"), index=False)
    write_curves(run.path, run.path / "figures")  # stands in for `xhbench figures`
    run.file("log.txt").write_text("training\nevaluation\n")
    run.finish(_summary(task_cls, task, run, method, seed, len(CASES)))
    return run


def brats_rows(rng, level: float) -> list[dict]:
    return [{"case": case, "setting": mask.id, "target": target, "metric": "dice",
             "value": float(np.clip(level + 0.1 * rng.normal(), 0, 1))}
            for case in CASES for mask in MASKS for target in ("WT", "TC", "ET", "ET_postpro")]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """``(root, expected)``: the results folder and each run's WT Dice mean by run id."""
    root = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    expected = {}
    for method, seed, level in (("swinunetr", 0, 0.6), ("swinunetr", 1, 0.62), ("rfnet", 0, 0.8)):
        rows = brats_rows(rng, level)
        run = _write_run(root, BraTS18Missing, method, seed, rows)
        wt = pd.DataFrame(rows).query("target == 'WT'").groupby("case")["value"].mean()
        expected[run.path.name] = wt.mean()
    lesion = [{"case": f"PETCT_{i}", "setting": "PET+CT", "target": "lesion", "metric": metric,
               "value": value} for i in range(4) for metric, value in
              (("dice", 0.5 + 0.1 * i), ("dice-", 0.4), ("fpv", 2.0), ("fnv", 1.0))]
    _write_run(root, AutoPETSeg, "swinunetr", 0, lesion)
    pairs = [("T1", "T2"), ("T2", "FLAIR"), ("T1", "T1")]  # T1->T1: PSNR inf, as identity's
    transfer = [{"case": case, "setting": source, "target": f"{source}->{target}",
                 "metric": metric, "value": np.inf if source == target and metric == "psnr"
                 else value} for case in CASES for source, target in pairs
                for metric, value in (("psnr", 25.0), ("ssim", 0.8), ("nmse", 0.1))]
    _write_run(root, BraTS23Transfer, "pix2pix3d", 0, transfer)
    broken = RunDir.create(root, "brats18_missing", "ours", 0, "0" * 12)
    broken.write_json("config.json", {"task": "brats18_missing", "method": "ours", "seed": 0})
    broken.write_status("failed", error="ValueError: <bad> crop")
    return root, expected


@pytest.fixture(scope="module")
def site(results, tmp_path_factory):
    root, _ = results
    out = tmp_path_factory.mktemp("site")
    result = CliRunner().invoke(cli, ["report", "--results", str(root), "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out / "index.html")
    return out


def test_site_has_a_page_per_task_and_run_and_the_pictures(results, site):
    root, expected = results
    assert sorted(p.parent.name for p in site.glob("*/index.html")) == [
        "autopet_seg", "brats18_missing", "brats23_transfer"]
    assert sorted(p.name for p in site.glob("brats23_transfer/*.png")) == [
        "bars-nmse.png", "bars-psnr.png", "bars-ssim.png"]
    runs = sorted(p.parent.name for p in site.glob("*/runs/*/*/index.html"))
    assert runs == sorted(p.name for p in root.glob("*/*/*"))  # finished and unfinished
    brats = site / "brats18_missing"
    assert (brats / "heatmap-table10.png").stat().st_size > 0  # Table 10 per subset
    assert (brats / "bars-dice.png").stat().st_size > 0
    page = (brats / "index.html").read_text()
    assert 'class="reported"' in page and "reported (paper, " in page  # Table 3's rows
    assert "ab" * 32 in page  # provenance: the split hash
    assert "3 finished and 1 unfinished" in page and "<td>failed</td>" in page
    failed = next(site.glob("brats18_missing/runs/ours/*/index.html")).read_text()
    assert "(failed)" in failed and "ValueError: &lt;bad&gt; crop" in failed  # escaped
    for run_id in expected:
        run_page = next(site.glob(f"brats18_missing/runs/*/{run_id}/index.html"))
        assert (run_page.parent / "training-curves.png").exists()
        assert "torch" in run_page.read_text() and "history.csv" not in run_page.read_text()


def test_report_on_a_missing_results_folder_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["report", "--results", str(tmp_path / "nope"), "--out",
                                      str(tmp_path / "site")])
    assert result.exit_code == 2 and "does not exist" in result.output


CHROMIUM = Path(os.environ.get("XHBENCH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _browser_or_skip():
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "the playwright package is not installed (pip install playwright)"
    if reason is None and not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium, or set XHBENCH_CHROMIUM)"
    if reason is not None:
        if os.environ.get("XHBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"XHBENCH_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return sync_playwright


def test_every_page_loads_in_chromium_without_errors_and_tables_sort(results, site, tmp_path):
    sync_playwright = _browser_or_skip()
    _, expected = results
    pages = sorted(site.rglob("index.html"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        problems: list[str] = []
        page.on("console", lambda message: problems.append(f"console {message.type}: "
                                                           f"{message.text}")
                if message.type in ("error", "warning") else None)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
        images = {}
        for path in pages:
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || "
                                   "i.naturalWidth === 0).map(i => i.src)")
            assert broken == [], f"{path}: broken images {broken}"
            assert problems == [], f"{path}: {problems}"
            images[path.relative_to(site)] = page.evaluate("document.images.length")
        assert images[Path("brats18_missing/index.html")] == 2  # heatmap and bars
        assert all(images[Path("brats18_missing/runs/swinunetr", run_id, "index.html")] == 1
                   for run_id in expected if (site / "brats18_missing/runs/swinunetr"
                                              / run_id).exists())  # training curves

        page.goto((site / "brats18_missing" / "index.html").as_uri())
        header = page.locator("#runs th", has_text="WT dice")
        column = page.evaluate("Array.from(document.querySelectorAll('#runs th'))"
                               ".map(th => th.textContent).indexOf('WT dice')")

        def cells(index: int) -> list[str]:
            return page.evaluate(f"Array.from(document.querySelectorAll('#runs tbody tr'))"
                                 f".map(tr => tr.cells[{index}].textContent.trim())")

        shown = dict(zip(cells(0), cells(column)))
        for run_id, mean in expected.items():
            assert float(shown[run_id]) == pytest.approx(mean, abs=5e-4)
        header.click()
        ascending = [float(v) if v else np.inf for v in cells(column)]
        assert ascending == sorted(ascending) and header.get_attribute("aria-sort") == "ascending"
        header.click()
        descending = [v for v in cells(column) if v]
        assert [float(v) for v in descending] == sorted(map(float, descending), reverse=True)
        assert cells(0)[-1] == next(p.name for p in results[0].glob("brats18_missing/ours/*"))

        page.goto((site / "index.html").as_uri())
        artifacts = Path(os.environ.get("XHBENCH_REPORT_ARTIFACTS", tmp_path))
        artifacts.mkdir(parents=True, exist_ok=True)
        shot = artifacts / "index.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    print(f"screenshot of index.html: {shot}")
    assert shot.stat().st_size > 0
