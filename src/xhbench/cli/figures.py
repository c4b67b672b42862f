"""``xhbench figures``: training curves, segmentation overlays and transfer panels of a run;
or transfer methods side by side from a results root."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsageError

__all__ = ["figures"]


@click.command("figures")
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Run folder (holds config.json and checkpoint.pt).")
@click.option("--results", "results_root",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Instead of --run: a results root; with --task, one figure per case and "
                   "pair comparing the methods' latest runs.")
@click.option("--task", help="With --results: the transfer task whose runs to compare.")
@click.option("--methods", metavar="M1,M2", help="With --results: methods, in column order "
              "(default: every method with a finished run that kept its weights).")
@click.option("--pairs", metavar="S->T,...", help="With --results: pairs to draw (default: "
              "those every compared run scores).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the PNGs  [default: RUN/figures, or RESULTS/figures/TASK]")
@click.option("--cases", type=click.IntRange(min=1), default=3, show_default=True,
              help="Draw the first N test cases.")
@click.option("--data-root", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Data set folder, if it moved since the run (default: the run's).")
@click.option("--device", help="cpu, cuda or cuda:N (default: cuda when present).")
def figures(run_dir: Path | None, results_root: Path | None, task: str | None,
            methods: str | None, pairs: str | None, out: Path | None, cases: int,
            data_root: Path | None, device: str | None) -> None:
    """Write PNGs of a run: training curves (loss terms and learning rate per stage, from
    history.csv); per test case, reference and predicted outlines over the image for a
    segmentation task (a slice per chosen setting, or a maximum-intensity projection), or
    source, generated image, ground truth and |difference| per scored pair for a transfer
    task (as the paper's Fig. 3). With --results and --task instead: per test case and
    pair, source, real target and one column per method's prediction. The methods are
    rebuilt from the runs' checkpoints and predict the cases again."""
    if (run_dir is None) == (results_root is None):
        raise UsageError("give either --run RUN_DIR or --results ROOT --task TASK")
    if run_dir is not None:
        if task or methods or pairs:
            raise UsageError("--task, --methods and --pairs go with --results, not --run")
        from ..harness.figures import write_figures

        paths = write_figures(run_dir, out, cases=cases, data_root=data_root, device=device)
    else:
        if not task:
            raise UsageError("--results needs --task")
        from ..harness.comparison import write_comparison

        paths = write_comparison(
            results_root, task, out or results_root / "figures" / task,
            methods=[m.strip() for m in methods.split(",") if m.strip()] if methods else None,
            pairs=pairs, cases=cases,
            data_root=data_root, device=device)
    for path in paths:
        click.echo(str(path))
