"""ci/mutation_plugin.py (test order, kills recorded, a frozen heap in mutmut's children) and
ci/mutation_score.py (the score of a mutmut run), on hand-made inputs."""

from __future__ import annotations

import gc
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

CI = Path(__file__).resolve().parents[1] / "ci"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, CI / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def items(*nodeids: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(nodeid=n, path=Path(n.split("::")[0])) for n in nodeids]


def test_fastest_module_first_then_fastest_test_with_each_modules_tests_together(
        tmp_path, monkeypatch):
    plugin = load("mutation_plugin")
    (tmp_path / "mutmut-stats.json").write_text(json.dumps({"duration_by_test": {
        "tests/a.py::slow": 2.0, "tests/a.py::fast": 0.1,   # module a: 2.1 s
        "tests/b.py::x": 0.5, "tests/b.py::y": 0.3,         # module b: 0.8 s
        "tests/c.py::known": 0.2}}))                        # module c: 0.2 s and a new test
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MUTANT_UNDER_TEST", "xhbench.metrics.intensity.x_psnr__mutmut_1")
    got = items("tests/a.py::slow", "tests/b.py::x", "tests/a.py::fast", "tests/c.py::known",
                "tests/b.py::y", "tests/c.py::new")
    plugin.pytest_collection_modifyitems(None, None, got)
    assert [i.nodeid for i in got] == [
        "tests/c.py::new", "tests/c.py::known", "tests/b.py::y",
        "tests/b.py::x", "tests/a.py::fast", "tests/a.py::slow"]


def test_tests_that_killed_the_functions_mutants_run_first_most_kills_first(tmp_path,
                                                                           monkeypatch):
    plugin = load("mutation_plugin")
    (tmp_path / "mutmut-stats.json").write_text(json.dumps({"duration_by_test": {
        "tests/a.py::s": 0.1, "tests/b.py::t": 0.2, "tests/b.py::u": 0.3}}))
    monkeypatch.chdir(tmp_path)
    f, g = "xhbench.m.x_f", "xhbench.m.x_g"
    for function, test in ((f, "tests/b.py::u"), (g, "tests/a.py::s"), (f, "tests/b.py::t"),
                           (f, "tests/b.py::u")):
        monkeypatch.setenv("MUTANT_UNDER_TEST", f"{function}__mutmut_1")
        plugin.pytest_runtest_logreport(SimpleNamespace(failed=True, nodeid=test))
    monkeypatch.setenv("MUTANT_UNDER_TEST", "xhbench.m.x_g__mutmut_2")
    plugin.pytest_runtest_logreport(SimpleNamespace(failed=False, nodeid="tests/b.py::t"))
    lines = (tmp_path / "mutation-kills.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines][:2] == [
        {"function": f, "test": "tests/b.py::u"}, {"function": g, "test": "tests/a.py::s"}]
    assert len(lines) == 4  # a passing test is no kill
    monkeypatch.setenv("MUTANT_UNDER_TEST", f"{f}__mutmut_7")
    got = items("tests/a.py::s", "tests/b.py::t", "tests/b.py::u")
    plugin.pytest_collection_modifyitems(None, None, got)
    assert [i.nodeid for i in got] == ["tests/b.py::u", "tests/b.py::t", "tests/a.py::s"]


@pytest.mark.parametrize("mutant, stats", [("", True), ("x_f__mutmut_1", False)])
def test_order_kept_outside_a_mutant_run_or_without_mutmuts_stats(tmp_path, monkeypatch,
                                                                   mutant, stats):
    plugin = load("mutation_plugin")
    if stats:
        (tmp_path / "mutmut-stats.json").write_text(
            json.dumps({"duration_by_test": {"tests/a.py::s": 9.0}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MUTANT_UNDER_TEST", mutant)
    got = items("tests/a.py::s", "tests/b.py::t")
    plugin.pytest_collection_modifyitems(None, None, got)
    assert [i.nodeid for i in got] == ["tests/a.py::s", "tests/b.py::t"]


def test_configure_freezes_the_heap():
    plugin = load("mutation_plugin")
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        plugin.pytest_configure(None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_score_per_file_with_the_survivors_and_the_threshold(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mutmut", reason="the mutation extra: pip install -e '.[mutation]'")
    score = load("mutation_score")
    meta = tmp_path / "mutants" / "src" / "xhbench" / "m.py.meta"
    meta.parent.mkdir(parents=True)
    codes = {"xhbench.m.x_f__mutmut_1": 1, "xhbench.m.x_f__mutmut_2": 0,   # killed, survived
             "xhbench.m.x_f__mutmut_3": 36, "xhbench.m.x_f__mutmut_4": 1,  # timeout, killed
             "xhbench.m.x_g__mutmut_1": 0}                                 # not in the glob
    meta.write_text(json.dumps({"exit_code_by_key": codes}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MUTATION_MIN_SCORE", "75")
    assert score.main(["xhbench.m.x_f*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["src/xhbench/m.py", "4", "3", "1", "75.0%"]
    assert out[-1] == "xhbench.m.x_f__mutmut_2: survived"
    monkeypatch.setenv("MUTATION_MIN_SCORE", "76")
    assert score.main(["xhbench.m.x_f*"]) == 1
    assert score.main(["xhbench.other.*"]) == 1
