"""``xhbench datasets``: write phantom data roots, check data roots, convert TCIA DICOM.

Every sub-command works for any registered data set through the :class:`Dataset` API
alone (``find_cases``, ``split_ids``, ``read``, ``write_phantom``), so data sets added by
plugins get them for free. Heavy imports (numpy, nibabel, pydicom) happen inside the
commands: importing this module must stay as cheap as ``xhbench list``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

import click

from ..errors import UsageError
from ..plugins import get_plugins

__all__ = ["allocate_cases", "datasets", "phantom_split_sizes"]

SPLIT_OPTIONS = {"validation": "val"}  # split name -> the option giving its case count
# Used for ``--cases`` when a data set ships no split files and declares no sizes.
FALLBACK_RATIO = {"train": 0.7, "val": 0.1, "test": 0.2}


@click.group("datasets")
def datasets() -> None:
    """Write phantoms, check data roots, convert DICOM (see docs/datasets.md)."""


# -- list -------------------------------------------------------------------------------
@datasets.command("list")
@click.option("-q", "--query", help="Only names containing this text.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_datasets(ctx: click.Context, query: str | None, as_json: bool) -> None:
    """Same as `xhbench list datasets`."""
    from .listing import list_command

    ctx.invoke(list_command, what="datasets", query=query, options=False, as_json=as_json)


# -- phantom ----------------------------------------------------------------------------
@datasets.command("phantom")
@click.argument("name")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Folder to write (must not exist or be empty).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--cases", type=click.IntRange(min=1),
              help="Total cases, shared over the splits in proportion to the real split "
                   "sizes, at least one per split  [default: 8].")
@click.option("--train", type=click.IntRange(min=1), help="Cases in the train split.")
@click.option("--val", type=click.IntRange(min=1), help="Cases in the val (or validation) split.")
@click.option("--test", type=click.IntRange(min=1), help="Cases in the test split.")
@click.option("--size", type=click.IntRange(min=8), default=48, show_default=True,
              help="Grid size (voxels per axis).")
def phantom(name: str, out: Path, seed: int, cases: int | None, train: int | None,
            val: int | None, test: int | None, size: int) -> None:
    """Write a phantom data root of data set NAME into --out.

    The folder holds the real on-disk layout plus the phantom manifest
    (xhbench_phantom.json: seed, size, splits), so `--data-root OUT` reads it through the
    same code as real data, with origin "phantom".
    """
    from ..datasets.base import PHANTOM_MANIFEST, write_phantom_root

    dataset_cls = get_plugins().registry.load("dataset", name)
    given = {k: v for k, v in {"train": train, "val": val, "test": test}.items()
             if v is not None}
    if given and cases is not None:
        raise UsageError("give either --cases or --train/--val/--test, not both")
    sizes = phantom_split_sizes(dataset_cls)
    per_split = (_explicit_cases(name, given, list(sizes)) if given
                 else allocate_cases(cases or 8, sizes))
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"--out {out} exists and is not empty")
    write_phantom_root(dataset_cls, out, seed=seed, cases_per_split=per_split, size=size)
    manifest = json.loads((out / PHANTOM_MANIFEST).read_text())
    sizes = ", ".join(f"{split} {len(ids)}" for split, ids in manifest["splits"].items())
    click.echo(f"Wrote {name} phantom (seed {seed}, size {size}^3; {sizes}) to {out}")
    click.echo(f"Check it:  xhbench datasets check {name} --data-root {out}")
    click.echo(f"Use it:    xhbench run ... --data-root {out}")


def _explicit_cases(name: str, given: Mapping[str, int], splits: list[str]) -> dict[str, int]:
    """``--train/--val/--test`` as the data set's own split names; each split once.

    ``--val`` stands for a split called ``val`` or ``validation``.
    """
    option = {split: SPLIT_OPTIONS.get(split, split) for split in splits}
    missing = [f"--{option[s]}" for s in splits if option[s] not in given]
    extra = [f"--{k}" for k in given if k not in option.values()]
    if extra:
        raise UsageError(f"data set {name} has no split for {', '.join(extra)} "
                         f"(its splits: {', '.join(splits)})")
    if missing:
        raise UsageError(f"{name} needs a case count for every split: missing "
                         f"{', '.join(missing)} (or use --cases)")
    return {split: given[option[split]] for split in splits}


def phantom_split_sizes(dataset_cls) -> dict[str, float]:
    """The real split sizes a phantom's ``--cases`` is shared by.

    A data set's ``real_split_sizes`` class attribute if it has one, else the line counts of
    its shipped split files (``split_folder/<split>.txt``), else :data:`FALLBACK_RATIO`.
    """
    from ..datasets.base import shipped_split_sizes

    if dataset_cls.real_split_sizes:
        return {k: float(v) for k, v in dataset_cls.real_split_sizes.items()}
    sizes = shipped_split_sizes(dataset_cls.split_folder) if dataset_cls.split_folder else {}
    return sizes or dict(FALLBACK_RATIO)


def allocate_cases(total: int, sizes: Mapping[str, float]) -> dict[str, int]:
    """Share ``total`` cases over splits in proportion to ``sizes``, at least one each.

    Largest remainder: each split gets the floor of its share (at least 1), then the splits
    furthest below their share get one more until the total is reached.
    """
    names = list(sizes)
    if total < len(names):
        raise UsageError(f"--cases {total}: need at least one case per split "
                         f"({', '.join(names)})")
    weight = sum(sizes.values())
    ideal = {s: total * sizes[s] / weight for s in names}
    counts = {s: max(1, int(ideal[s])) for s in names}
    while sum(counts.values()) < total:
        split = max(names, key=lambda s: (ideal[s] - counts[s], -names.index(s)))
        counts[split] += 1
    while sum(counts.values()) > total:
        split = max((s for s in names if counts[s] > 1),
                    key=lambda s: (counts[s] - ideal[s], -names.index(s)))
        counts[split] -= 1
    return counts


# -- check ------------------------------------------------------------------------------
@datasets.command("check")
@click.argument("name")
@click.option("--data-root", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Data root to check (required; write a phantom with `xhbench datasets "
                   "phantom` to check the generator).")
@click.option("--split", help="Only this split's cases (default: every case on disk and "
                              "every split).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check(name: str, data_root: Path | None, split: str | None, as_json: bool) -> None:
    """Verify a data root of data set NAME; list every problem found (exit code 1 if any).

    Checks that each case has every file, files decode, shapes and affines agree across a
    case, there is no NaN/Inf or all-zero image, label values are the expected ones, and
    every split lists cases, without duplicates, that exist on disk and in no other split.
    """
    from ..datasets.checks import check_root

    dataset_cls = get_plugins().registry.load("dataset", name)
    if data_root is None:
        raise UsageError("--data-root is required: pass the folder to check (a phantom "
                         f"written by `xhbench datasets phantom {name} --out DIR` works too)")
    data = dataset_cls(data_root)
    report = check_root(data, split)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        splits = ", ".join(f"{s} {n}" for s, n in report["splits"].items()) or "none found"
        click.echo(f"{name} at {report['root']} ({report['origin']}): "
                   f"{report['cases_on_disk']} case(s) on disk, {report['cases_checked']} "
                   f"checked; splits: {splits}")
        for problem in report["problems"]:
            click.echo(_problem_line(problem))
        n = len(report["problems"])
        if n:
            cases = len({p["case"] for p in report["problems"] if p["case"]})
            click.echo(f"{n} problem(s) in {cases} case(s)")
        else:
            click.echo("OK: no problems")
    if report["problems"]:
        sys.exit(1)


def _problem_line(problem: Mapping[str, str | None]) -> str:
    where = ", ".join(part for part in (
        f"case {problem['case']}" if problem["case"] else "",
        f"file {problem['file']}" if problem["file"] else "") if part)
    return f"{where}: {problem['what']}" if where else str(problem["what"])


# -- DICOM ------------------------------------------------------------------------------
@datasets.command("convert-tcia")
@click.argument("study", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--pet-units", type=click.Choice(["suv", "native"]), default="suv",
              show_default=True,
              help="PET as body-weight SUV, or as the series' own units (Bq/ml for BQML).")
@click.option("--force", is_flag=True, help="Replace existing output files.")
def convert_tcia(study: Path, out: Path, pet_units: str, force: bool) -> None:
    """Convert one TCIA PET/CT STUDY folder (DICOM series) to OUT/{nac_pet,ac_pet,ct}.nii.gz.

    AC and NAC PET are told apart by Corrected Image (0028,0051) containing ATTN; CT and
    NAC-PET are resampled onto the AC-PET grid (see docs/datasets.md).
    """
    from ..datasets.dicom import convert_tcia_petct

    summary = convert_tcia_petct(study, out, pet_units=pet_units, overwrite=force)
    for role, info in summary["series"].items():
        click.echo(f"{role}: series {info['series_number']} {info['description']!r} "
                   f"({info['slices']} slices, {info['units']}) -> {info['file']}")
    click.echo(f"Wrote {out} (grid {tuple(summary['shape'])}, spacing "
               f"{tuple(round(s, 3) for s in summary['spacing'])} mm)")
