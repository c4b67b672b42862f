"""``xhbench figures``: training curves, segmentation overlays and transfer panels of a run."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["figures"]


@click.command("figures")
@click.option("--run", "run_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Run folder (holds config.json and checkpoint.pt).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the PNGs  [default: RUN/figures]")
@click.option("--cases", type=click.IntRange(min=1), default=3, show_default=True,
              help="Draw the first N test cases.")
@click.option("--data-root", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Data set folder, if it moved since the run (default: the run's).")
@click.option("--device", help="cpu, cuda or cuda:N (default: cuda when present).")
def figures(run_dir: Path, out: Path | None, cases: int, data_root: Path | None,
            device: str | None) -> None:
    """Write PNGs of a run: training curves (loss terms and learning rate per stage, from
    history.csv); per test case, reference and predicted outlines over the image for a
    segmentation task (a slice per chosen setting, or a maximum-intensity projection), or
    source, generated image, ground truth and |difference| per scored pair for a transfer
    task (as the paper's Fig. 3). The method is rebuilt from the run's checkpoint and
    predicts the cases again."""
    from ..harness.figures import write_figures

    for path in write_figures(run_dir, out, cases=cases, data_root=data_root, device=device):
        click.echo(str(path))
