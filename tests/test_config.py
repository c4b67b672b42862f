"""Config resolution: defaults < profile < file < --set, with type checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from xhbench.errors import ConfigError
from xhbench.harness import config as cfg
from xhbench.harness.runner import RunRequest, plan


@dataclass
class Example:
    lr: float = 1e-3
    steps: int = 10
    roi: tuple[int, int, int] = (32, 32, 32)
    norm: Literal["group", "instance"] = "group"
    amp: bool = True
    limit: int | None = None


PROFILES = {"smoke": {"steps": 1}, "default": {}, "paper": {"steps": 1000, "lr": 2e-4}}


def test_layers_apply_in_order():
    config = cfg.resolve("m", Example, PROFILES, "paper", {"steps": 500}, {"lr": "0.01"})
    assert (config.steps, config.lr) == (500, 0.01)
    assert cfg.resolve("m", Example, PROFILES, "smoke").steps == 1


@pytest.mark.parametrize("key, text, expected", [
    ("roi", "64,64,32", (64, 64, 32)),
    ("roi", "[16, 16, 16]", (16, 16, 16)),
    ("norm", "instance", "instance"),
    ("amp", "false", False),
    ("limit", "none", None),
    ("limit", "3", 3),
])
def test_strings_are_coerced_by_field_type(key, text, expected):
    assert getattr(cfg.resolve("m", Example, PROFILES, "default", {key: text}), key) == expected


@pytest.mark.parametrize("key, text, message", [
    ("steps", "ten", "expected int"),
    ("steps", "2.5", "expected int"),
    ("norm", "batch", "not one of group, instance"),
    ("amp", "maybe", "expected true or false"),
    ("roi", "1,2", "expected 3 values"),
    ("nope", "1", "unknown option"),
])
def test_bad_values_are_clear_errors(key, text, message):
    with pytest.raises(ConfigError, match=message):
        cfg.resolve("method m", Example, PROFILES, "default", {key: text})


def test_unknown_profile():
    with pytest.raises(ConfigError, match="unknown profile"):
        cfg.resolve("m", Example, PROFILES, "huge")


def test_parse_assignments_rejects_missing_equals():
    assert cfg.parse_assignments(["a=1", "b = x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(ConfigError, match="key=value"):
        cfg.parse_assignments(["steps"])


def _request(tmp_path, **kw):
    return RunRequest(task="brats18_missing", method="swinunetr", out=tmp_path, profile="smoke", **kw)


def test_plan_routes_overrides_and_reads_config_file(tmp_path):
    file = tmp_path / "run.toml"
    file.write_text("[method]\nlr = 0.05\nfeature_size = 24\n[task]\nphantom_test = 3\n")
    validated = plan(_request(tmp_path, config_file=file,
                              overrides={"steps": "3", "task.phantom_train": "5", "method.lr": "0.1"}))
    assert validated.method_config.steps == 3
    assert validated.method_config.lr == 0.1  # --set beats the file
    assert validated.method_config.feature_size == 24
    assert (validated.task_config.phantom_train, validated.task_config.phantom_test) == (5, 3)
    assert validated.config["profile"] == "smoke"
    assert len(validated.config_hash) == 64


@pytest.mark.parametrize("overrides, message", [
    ({"wat": "1"}, "unknown option"),
    ({"model.lr": "1"}, "prefix must be"),
    ({"method.steps": "many"}, "expected int"),
])
def test_plan_rejects_bad_overrides(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        plan(_request(tmp_path, overrides=overrides))


def test_config_file_with_unknown_section(tmp_path):
    file = tmp_path / "run.json"
    file.write_text('{"model": {"lr": 1}}')
    with pytest.raises(ConfigError, match="unknown sections"):
        plan(_request(tmp_path, config_file=file))
