"""The mutation score of the mutants named by mutmut globs, per file, and their survivors.

Usage (from the project root, after ``mutmut run``): ``python ci/mutation_score.py GLOB...``.
With ``MUTATION_MIN_SCORE`` (a percentage) set, exits 1 when the score of all of them is
lower. A timeout counts as a kill, as in docs/testing.md.
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

KILLED = {"killed", "timeout", "caught by type check"}


def main(globs: list[str]) -> int:
    counts: dict[str, Counter] = {}
    survivors = []
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if not any(fnmatch.fnmatchcase(name, glob) for glob in globs):
                continue
            status = status_by_exit_code[code]
            status = "killed" if status in KILLED else status
            counts.setdefault(str(meta.relative_to("mutants"))[:-5], Counter())[status] += 1
            if status != "killed":
                survivors.append(f"{name}: {status}")
    if not counts:
        print("mutation: no mutant matches", " ".join(globs))
        return 1
    total = Counter()
    print(f"{'file':48} {'mutants':>7} {'killed':>6} {'other':>5} {'score':>6}")
    for path, c in counts.items():
        total += c
        _line(path, c)
    _line("all", total)
    print(*survivors, sep="\n")
    least = os.environ.get("MUTATION_MIN_SCORE")
    if least and _score(total) < float(least):
        print(f"mutation: score {_score(total):.1f}% is below {least}%: kill the survivors above, "
              "or record them as equivalent in docs/testing.md")
        return 1
    return 0


def _score(c: Counter) -> float:
    return 100 * c["killed"] / sum(c.values())


def _line(label: str, c: Counter) -> None:
    n = sum(c.values())
    print(f"{label:48} {n:7} {c['killed']:6} {n - c['killed']:5} {_score(c):5.1f}%")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
