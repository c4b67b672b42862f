"""``xhbench report``: a static HTML site of a results folder."""

from __future__ import annotations

from pathlib import Path

import click

from ..results import default_results_root

__all__ = ["report"]


@click.command("report")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path),
              help="Results root  [default: $XHBENCH_RESULTS or ./xhbench-results]")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the site (index.html and one folder per task).")
def report(results: Path | None, out: Path) -> None:
    """Write a static HTML site (open OUT/index.html, no server): per task the paper-shaped
    tables with reported rows marked, provenance of the measured rows, sortable run tables,
    bar charts, per-setting heatmaps and one page per run (config, environment, cost,
    training curves, figures, per-case table). Run `xhbench figures` first to include a
    run's overlays."""
    from ..report import build_site

    click.echo(str(build_site(results if results is not None else default_results_root(), out)))
