"""Data-parallel runs under torchrun, on CPU with gloo and two processes.

Tolerance of the two-process run against the one-process run: not bit-identical,
and not expected to be. Both see the same global batches (every rank builds step
k's batch and keeps its slots), and DDP's average of the rank-weighted losses'
gradients is mathematically the gradient of the global batch's mean loss; but the
float32 sums run in another order (per-rank convolutions over one sample each,
then gloo's all-reduce, instead of one convolution over the batch), which moves
gradients by ~1e-7 relative. After two AdamW steps the weights differ by about
as much, and an argmax prediction changes only at voxels whose two top logits
are that close: a few voxels of a case, so a Dice value moves by ~1e-4 to 1e-3.
Asserted: training losses within 1e-4 relative, every per-case row within 0.02,
and the per-(target, metric) means that the leaderboard shows within 0.002.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from xhbench.results import find_runs

SMOKE = ["--task", "brats18_missing", "--method", "unetr", "--profile", "smoke",
         "--set", "task.phantom_train=2", "--set", "task.phantom_test=3",
         "--set", "method.steps=2", "--set", "method.batch_size=2"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
            "2"]
KEYS = ["case", "setting", "target", "metric"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "XHBENCH_CACHE": str(tmp_path / "cache")}


def _check(process: subprocess.Popen, timeout: int = 600) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return output


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same smoke run in one process and under torchrun with two, side by side."""
    tmp = tmp_path_factory.mktemp("ddp")
    env = _env(tmp)
    # the phantom first, so the two runs do not both wait on its lock
    single = subprocess.Popen([sys.executable, "-m", "xhbench", "run", *SMOKE, "--out",
                               str(tmp / "single")], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    double = subprocess.Popen([*TORCHRUN, "-m", "xhbench", "run", *SMOKE, "--out",
                               str(tmp / "ddp")], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    _check(single)
    output = _check(double)
    (one,), unfinished = find_runs(tmp / "single", "brats18_missing")
    assert not unfinished
    ddp_runs, unfinished = find_runs(tmp / "ddp", "brats18_missing")
    assert len(ddp_runs) == 1 and not unfinished, "rank 1 must not create a run folder"
    return one, ddp_runs[0], output


def test_torchrun_smoke_run_finishes_and_only_rank_0_writes(runs):
    _, ddp, output = runs
    assert output.count("Run folder:") == 1  # rank 1 prints nothing but warnings
    assert sorted(p.name for p in ddp.path.iterdir()) == [
        "cases.csv", "cases.done", "checkpoint.pt", "config.json", "cost.json",
        "environment.json", "history.csv", "log.txt", "status.json", "summary.json",
        "training.json"]
    assert ddp.read_json("cost.json")["processes"] == 2
    assert ddp.read_json("environment.json")["processes"] == 2
    assert ddp.summary["data"]["n_cases"] == 3


def test_every_test_case_exactly_once(runs):
    one, ddp, _ = runs
    rows = ddp.cases()
    assert not rows.duplicated(KEYS).any()
    assert sorted(ddp.completed_cases()) == sorted(one.completed_cases())
    assert len(set(ddp.completed_cases())) == 3
    assert rows.groupby("case").size().eq(15 * 4).all()  # settings x regions
    assert set(map(tuple, rows[KEYS].values)) == set(map(tuple, one.cases()[KEYS].values))
    # with no skipped case the journal keeps the one-process order
    assert ddp.completed_cases() == one.completed_cases()


def test_metrics_agree_with_the_single_process_run(runs):
    one, ddp, _ = runs
    fit_one = one.read_json("training.json")["fit"]
    fit_ddp = ddp.read_json("training.json")["fit"]
    for key in ("first_loss", "last_loss"):
        assert fit_ddp[key] == pytest.approx(fit_one[key], rel=1e-4)
    assert one.summary["config_hash"] == ddp.summary["config_hash"]  # pools as seeds
    both = one.cases().merge(ddp.cases(), on=KEYS, suffixes=("_one", "_ddp"))
    assert len(both) == len(one.cases())
    assert (both["value_one"] - both["value_ddp"]).abs().max() <= 0.02
    means = both.groupby(["target", "metric"])[["value_one", "value_ddp"]].mean()
    assert (means["value_one"] - means["value_ddp"]).abs().max() <= 0.002


# --- the pieces, in two gloo processes (seconds) -------------------------------------------

PIECES = textwrap.dedent('''
    import copy, json, sys
    from pathlib import Path

    import torch

    from xhbench.errors import DataError
    from xhbench.harness import distributed as d
    from xhbench.results import RunDir

    out = Path(sys.argv[1])

    def loss_fn(output, label):  # a mean over samples, like Dice + CE
        return torch.nn.functional.cross_entropy(output, label)

    class Case:
        def __init__(self, case_id):
            self.case_id = case_id

    def fake_evaluate(task, method, cases, run, *, progress, on_bad_case):
        """The contract of harness.evaluation.evaluate, without a model."""
        done = run.completed_cases()
        for case in cases:
            if case.case_id in done:
                continue
            if case.case_id == task["bad"]:
                error = DataError("unreadable", case=case.case_id, path="x.nii.gz")
                if on_bad_case is None:
                    raise error
                on_bad_case(error)
                continue
            if case.case_id == task["crash"] and d.rank() == 1:
                raise RuntimeError("boom")
            rows = [{"case": case.case_id, "setting": "1", "target": "WT", "metric": "dice",
                     "value": d.rank()}]
            run.record_case(case.case_id, rows)
            done.append(case.case_id)
        return done

    with d.process_group("cpu") as device:
        result = {"rank": d.rank(), "world": d.world_size(), "device": str(device)}
        torch.manual_seed(0)
        net = torch.nn.Conv3d(2, 3, 3, padding=1)
        ref = copy.deepcopy(net)
        model = d.wrap(net, device)
        for n in (4, 3, 1):  # even, uneven, fewer samples than ranks (stand-in)
            g = torch.Generator().manual_seed(n)
            batch = {"image": torch.randn(n, 2, 4, 4, 4, generator=g),
                     "label": torch.randint(0, 3, (n, 4, 4, 4), generator=g),
                     "case": [f"s{i}" for i in range(n)]}
            mine, weight = d.rank_share(batch)
            net.zero_grad()
            loss = loss_fn(model(mine["image"]), mine["label"]) * weight
            reported = d.mean_over_ranks(loss)
            loss.backward()
            ref.zero_grad()
            full = loss_fn(ref(batch["image"]), batch["label"])
            full.backward()
            result[f"batch{n}"] = {
                "samples": mine["case"], "weight": weight,
                "loss_error": abs(float(reported.detach()) - float(full.detach())),
                "grad_error": max(float((a.grad - b.grad).abs().max())
                                  for a, b in zip(net.parameters(), ref.parameters()))}

        cases = [Case(f"c{i}") for i in range(7)]
        run = RunDir(out / "run")
        if d.is_main():
            run.path.mkdir()
            run.record_case("c0", [{"case": "c0", "setting": "1", "target": "WT",
                                    "metric": "dice", "value": -1}])  # done before a stop
        d.barrier()
        skipped = []
        done = d.evaluate_sharded(fake_evaluate, {"bad": "c4", "crash": None}, None, cases,
                                  run, progress=False, on_bad_case=skipped.append)
        result["done"], result["skipped"] = done, [e.case for e in skipped]
        try:
            d.evaluate_sharded(fake_evaluate, {"bad": "c4", "crash": "c5"}, None, cases,
                               RunDir(out / "run2"), progress=False, on_bad_case=None)
        except Exception as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
        (out / f"rank{d.rank()}.json").write_text(json.dumps(result))
''')


def test_batch_slots_gradients_and_case_gathering(tmp_path):
    script = tmp_path / "pieces.py"
    script.write_text(PIECES)
    (tmp_path / "run2").mkdir()
    done = subprocess.run([*TORCHRUN, str(script), str(tmp_path)], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2] and ranks[0]["device"] == "cpu"

    # slots r, r + 2, ...; weights make DDP's average the global batch's mean gradient
    assert [r["batch4"]["samples"] for r in ranks] == [["s0", "s2"], ["s1", "s3"]]
    assert [r["batch3"]["samples"] for r in ranks] == [["s0", "s2"], ["s1"]]
    assert [r["batch3"]["weight"] for r in ranks] == pytest.approx([4 / 3, 2 / 3])
    assert [r["batch1"]["samples"] for r in ranks] == [["s0"], ["s0"]]  # rank 1: stand-in
    assert [r["batch1"]["weight"] for r in ranks] == [2.0, 0.0]
    for r in ranks:
        for n in (4, 3, 1):
            assert r[f"batch{n}"]["loss_error"] < 1e-6
            assert r[f"batch{n}"]["grad_error"] < 1e-6

    # cases: c0 journalled before, c4 unreadable -> skipped on rank 0's record, rest once
    expected = ["c0", "c1", "c2", "c3", "c5", "c6"]
    assert sorted(ranks[0]["done"]) == expected and ranks[0]["done"] == ranks[1]["done"]
    assert ranks[0]["skipped"] == ["c4"] and ranks[1]["skipped"] == []
    rows = pd.read_csv(tmp_path / "run" / "cases.csv")
    assert sorted(rows["case"]) == expected
    assert set(rows.loc[rows["case"] != "c0", "value"]) == {0, 1}  # both ranks worked
    assert (tmp_path / "run" / "cases.done").read_text().split() == ranks[0]["done"]

    # an error on one rank (or an unreadable case without --skip-bad-cases) stops all
    # (rank 0: c0 c2 c4; rank 1: c1 c3 c5 crashes): both raise in the third round, and
    # the two rounds before are journalled
    assert ranks[0]["error"] == "DataError: case c4, file x.nii.gz: unreadable"
    assert ranks[1]["error"] == "RuntimeError: boom"
    assert (tmp_path / "run2" / "cases.done").read_text().split() == ["c0", "c1", "c2", "c3"]


# --- launching --------------------------------------------------------------------------------


def test_run_nproc_delegates_to_torchrun(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from xhbench.cli import cli

    calls = []

    def fake_run(command, check):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr("xhbench.cli.run.subprocess.run", fake_run)
    result = CliRunner().invoke(cli, ["run", *SMOKE, "--seed", "3", "--nproc", "2",
                                      "--skip-bad-cases", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (command,) = calls
    assert command[1:7] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                            "2", "-m"]
    args = command[7:]
    assert args[:2] == ["xhbench", "run"] and "--nproc" not in args
    assert args[args.index("--seed") + 1] == "3" and "--skip-bad-cases" in args
    assert "--resume" not in args and args[-2:] == ["--out", str(tmp_path)]
    sets = [args[i + 1] for i, arg in enumerate(args) if arg == "--set"]
    assert sets == [SMOKE[i + 1] for i, arg in enumerate(SMOKE) if arg == "--set"]


def test_methods_without_a_ddp_loop_are_refused(tmp_path):
    from click.testing import CliRunner

    from xhbench.cli import cli

    result = CliRunner().invoke(cli, ["run", "--task", "brats23_transfer", "--method", "pix2pix2d",
                                      "--profile", "smoke", "--nproc", "2", "--out",
                                      str(tmp_path)])
    assert result.exit_code == 2
    assert "trains in one process only" in result.output


def test_a_missing_modality_method_trains_data_parallel(tmp_path):
    """The engine's DDP path with a method that has its own loss terms (HeMIS): both
    processes train each step's shared batch, rank 0 records it."""
    args = ["--task", "brats18_missing", "--method", "hemis", "--profile", "smoke",
            "--set", "task.phantom_train=2", "--set", "task.phantom_test=1",
            "--set", "method.steps=2", "--set", "method.batch_size=2"]
    process = subprocess.Popen([*TORCHRUN, "-m", "xhbench", "run", *args, "--out",
                                str(tmp_path / "ddp")], env=_env(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _check(process)
    (run,), unfinished = find_runs(tmp_path / "ddp", "brats18_missing")
    assert not unfinished
    history = pd.read_csv(run.file("history.csv"))
    assert history["step"].tolist() == [0, 1]
    assert list(history.columns[:5]) == ["stage", "step", "lr", "loss", "fuse"]
    assert history.notna().all().all()
    cost = run.read_json("cost.json")
    assert cost["processes"] == 2 and cost["train_steps"] == 2 and cost["train_samples"] == 4
