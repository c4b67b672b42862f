"""``xhbench compare``: regression check between two leaderboard JSON files."""

from __future__ import annotations

from pathlib import Path

import click

from ..leaderboard import (DEFAULT_TOLERANCE, compare_leaderboards, format_comparison,
                           load_leaderboard)

__all__ = ["compare"]


def _parse_tolerances(ctx: click.Context, param: click.Parameter,
                      values: tuple[str, ...]) -> dict[str, float]:
    tolerances = {}
    for item in values:
        metric, sep, number = item.partition("=")
        try:
            tolerance = float(number)
        except ValueError:
            tolerance = -1.0
        if not sep or not metric.strip() or not tolerance >= 0:
            raise click.BadParameter(f"expected METRIC=FLOAT with FLOAT >= 0, got {item!r}")
        tolerances[metric.strip()] = tolerance
    return tolerances


@click.command("compare")
@click.argument("reference", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("current", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tolerance", type=click.FloatRange(min=0), default=DEFAULT_TOLERANCE,
              show_default=True, help="Absolute tolerance on each mean.")
@click.option("--tolerance-for", "tolerances", multiple=True, metavar="METRIC=FLOAT",
              callback=_parse_tolerances, help="Absolute tolerance for one metric (repeatable).")
@click.option("--allow-mixed-versions", is_flag=True,
              help="Compare leaderboards of different task versions.")
@click.option("--method", "methods", multiple=True, metavar="NAME",
              help="Compare only this method's rows (repeatable), e.g. a method re-run "
                   "against a published leaderboard.")
def compare(reference: Path, current: Path, tolerance: float, tolerances: dict[str, float],
            allow_mixed_versions: bool, methods: tuple[str, ...]) -> None:
    """Check a leaderboard JSON against a reference one; exit 1 on any regression."""
    comparison = compare_leaderboards(load_leaderboard(reference), load_leaderboard(current),
                                      tolerance=tolerance, tolerances=tolerances,
                                      allow_mixed_versions=allow_mixed_versions,
                                      methods=methods)
    click.echo(f"REFERENCE {reference}\nCURRENT   {current}\n")
    click.echo(format_comparison(comparison), nl=False)
    if not comparison.ok:
        raise click.exceptions.Exit(1)
