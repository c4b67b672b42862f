"""``xhbench list``: what is registered, from registrations alone (no torch import)."""

from __future__ import annotations

import dataclasses
import json

import click

from ..datasets.base import Dataset
from ..options import range_of
from ..plugins import get_plugins

__all__ = ["list_command"]

WHAT = ("tasks", "datasets", "methods", "plugins")


@click.command("list")
@click.argument("what", type=click.Choice(WHAT), default="methods", required=False)
@click.option("-q", "--query", help="Only names containing this text.")
@click.option("--options", is_flag=True, help="Show each entry's options and profiles (imports it).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(what: str, query: str | None, options: bool, as_json: bool) -> None:
    """List registered tasks, data sets, methods or plugins."""
    plugins = get_plugins()
    if what == "plugins":
        rows = [{"name": info.name, "source": info.source, "hooks": info.hooks,
                 "error": info.error} for info in plugins.plugins.values()]
    else:
        registry = plugins.registry
        rows = []
        for entry in registry.entries(what[:-1]):
            if query and query not in entry.name:
                continue
            row = {"name": entry.name, "description": entry.description, "plugin": entry.plugin,
                   **entry.meta}
            if what == "methods":
                row["tasks"] = registry.tasks_supported_by(entry)
            if options:
                row["options"] = _options(entry.load())
            rows.append(row)
    options = options and what != "plugins"  # plugins have hooks, not options
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=list))
        return
    for row in rows:
        click.echo(_line(what, row))
        if options:
            if row["options"]["fields"]:
                click.echo(f"    options (--set {what[:-1]}.NAME=VALUE), each with its value "
                           "before a profile and its range:")
            for name, (type_name, default, valid) in row["options"]["fields"].items():
                click.echo(f"    {name}: {type_name} = {default!r}"
                           + (f"  ({valid})" if valid else ""))
            for profile, values in row["options"]["profiles"].items():
                used = " (xhbench run without --profile)" if profile == "default" else ""
                click.echo(f"    profile {profile}{used}: {values}")
            for stage in row["options"].get("default_budget", []):
                click.echo(f"    default budget {_stage_line(stage)}")
            for name, value in row["options"].get("attributes", {}).items():
                click.echo(f"    {name}: {value}")
    errors = plugins.errors
    if errors and what != "plugins":
        click.echo(f"({len(errors)} plugin(s) failed to load: {', '.join(errors)}; "
                   "see `xhbench list plugins`)", err=True)


def _line(what: str, row: dict) -> str:
    if what == "plugins":
        status = f"ERROR: {row['error']}" if row["error"] else ", ".join(row["hooks"]) or "no hooks"
        return f"{row['name']} ({row['source']}): {status}"
    extra = ""
    if what == "methods":
        extra = f"  [tasks: {', '.join(row['tasks']) or 'none'}]"
    elif what == "tasks":
        extra = f"  [{row['kind']}, data set {row['dataset']}]"
    return f"{row['name']}: {row['description']}{extra}"


def _options(cls: type) -> dict:
    """A task's or method's config fields (type, default, range) and profiles; a data
    set, which has no config, its layout's attributes."""
    if not hasattr(cls, "Config"):
        return {"fields": {}, "profiles": {}, "attributes": {
            "modalities": list(cls.modalities), "label_values": cls.label_values,
            "phantom": cls.write_phantom.__func__ is not Dataset.write_phantom.__func__}}
    fields = {f.name: (getattr(f.type, "__name__", str(f.type)), _default(f),
                       str(range_of(cls.Config, f.name) or ""))
              for f in dataclasses.fields(cls.Config)}
    described = {"fields": fields, "profiles": {k: dict(v) for k, v in cls.profiles.items()}}
    if hasattr(cls, "training_plan"):  # methods: what the default profile trains
        described["default_budget"] = [dataclasses.asdict(stage) | {"crops": stage.crops}
                                       for stage in default_plan(cls)]
    return described


def default_plan(cls: type) -> list:
    """A method's planned training stages at the ``default`` profile."""
    from ..harness.config import resolve

    config = resolve(f"method {cls.name}", cls.Config, cls.profiles, "default")
    return cls.training_plan(config)


def _stage_line(stage: dict) -> str:
    crop = "x".join(map(str, stage["crop"])) if stage["crop"] else "the method's planned patch"
    extra = " (extra stage)" if stage["extra"] else ""
    return (f"{stage['name']}: {stage['steps']} steps x batch {stage['batch']} = "
            f"{stage['crops']} crops of {crop}{extra}")


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None
